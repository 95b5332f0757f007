import { afterEach, describe, expect, it } from 'vitest';
import { CATALOGUE, LANGUAGES, pickLanguage, setLanguage, t } from './i18n';

afterEach(() => setLanguage('en'));

describe('catalogue', () => {
  it('has every key, non-empty, with the same placeholders, in every language', () => {
    const keys = Object.keys(CATALOGUE.en);
    const holes = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const lang of LANGUAGES) {
      const cat = CATALOGUE[lang];
      expect(Object.keys(cat).sort()).toEqual([...keys].sort());
      for (const k of keys) {
        const text = cat[k as keyof typeof cat];
        expect(text.trim(), `${lang} ${k}`).not.toBe('');
        expect(holes(text), `${lang} ${k}`).toEqual(holes(CATALOGUE.en[k as keyof typeof CATALOGUE.en]));
      }
    }
  });

  it('the Chinese catalogue is translated, not copied', () => {
    const same = Object.entries(CATALOGUE['zh-CN']).filter(([k, v]) => v === CATALOGUE.en[k as keyof typeof CATALOGUE.en]);
    // Only proper names and "ID" may be identical.
    expect(same.map(([k]) => k).sort()).toEqual(['app.title', 'host.id', 'viewer.id']);
  });

  it('fills placeholders and switches language', () => {
    expect(t('state.reconnectingRetry', { n: 3, s: 4 })).toBe('Reconnecting (attempt 3), next try in 4 s');
    setLanguage('zh-CN');
    expect(t('state.reconnectingRetry', { n: 3, s: 4 })).toBe('正在重新连接（第 3 次），4 秒后重试');
    expect(t('consent.left', {})).toContain('{s}');
  });

  it('picks the setting, else the system language, else English', () => {
    expect(pickLanguage('zh-CN', ['en-US'])).toBe('zh-CN');
    expect(pickLanguage(null, ['zh-CN', 'en'])).toBe('zh-CN');
    expect(pickLanguage(null, ['zh-Hans-CN'])).toBe('zh-CN');
    expect(pickLanguage(null, ['zh-TW', 'en-GB'])).toBe('en');
    expect(pickLanguage(null, ['fr-FR'])).toBe('en');
    expect(pickLanguage('klingon', [])).toBe('en');
  });
});
