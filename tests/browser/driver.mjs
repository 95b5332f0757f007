// A line-protocol driver for Debian's Chromium, so Rust tests can use a real
// browser. One JSON request per stdin line, one JSON reply per stdout line:
//   {"cmd":"open","url":"..."}            -> {"ok":true}
//   {"cmd":"eval","expr":"..."}           -> {"ok":true,"value":...}
//   {"cmd":"screenshot","path":"..."}     -> {"ok":true}
//   {"cmd":"console"}                     -> {"ok":true,"value":[...lines]}
//   {"cmd":"mouse","action":"move|down|up|click|wheel","x":..,"y":..,"button":"left","dx":..,"dy":..}
//   {"cmd":"keyboard","action":"type|press|down|up|insert","text":"..","key":".."}
//   {"cmd":"files","selector":"..","paths":[..]} -> {"ok":true}  (a file input's picked files)
//   {"cmd":"download","selector":"..","path":".."} -> {"ok":true,"value":"suggested name"} (click, save the download)
//   {"cmd":"grant","permissions":[..],"origin":".."} -> {"ok":true}
//   {"cmd":"close"}                       -> {"ok":true} and exit
// Chromium never downloads anything: executablePath is the system binary.
// HEADFUL=1 opens a real window on $DISPLAY (at 0,0, WINDOW_W x WINDOW_H): the
// tests use one as the application that receives the injected input.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const userDataDir = mkdtempSync(join(tmpdir(), 'holdfast-chromium-'));
const headful = process.env.HEADFUL === '1';
const windowArgs = headful
  ? ['--ozone-platform=x11', '--window-position=0,0',
     `--window-size=${process.env.WINDOW_W || 1920},${process.env.WINDOW_H || 1080}`, '--test-type']
  : [];
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: !headful,
  viewport: headful ? null : { width: Number(process.env.VIEWPORT_W || 1280), height: Number(process.env.VIEWPORT_H || 800) },
  ignoreHTTPSErrors: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    // Tests run in a private network namespace with only loopback: let WebRTC
    // use it, and publish raw addresses instead of mDNS names.
    '--allow-loopback-in-peer-connection',
    '--disable-features=WebRtcHideLocalIpsWithMdns',
    // Plain-HTTP origins to treat as secure (WebCodecs needs a secure context),
    // for tests whose server sits on a namespace's LAN address without TLS.
    ...(process.env.SECURE_ORIGINS ? [`--unsafely-treat-insecure-origin-as-secure=${process.env.SECURE_ORIGINS}`] : []),
    ...windowArgs,
  ],
});
const page = context.pages()[0] ?? (await context.newPage());
const consoleLines = [];
page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));

const reply = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
process.stdout.write(JSON.stringify({ ready: true }) + '\n');

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  let req;
  try {
    req = JSON.parse(line);
    switch (req.cmd) {
      case 'open':
        await page.goto(req.url, { waitUntil: 'load' });
        reply({ ok: true });
        break;
      case 'eval':
        reply({ ok: true, value: await page.evaluate(req.expr) });
        break;
      case 'screenshot':
        await page.screenshot({ path: req.path });
        reply({ ok: true });
        break;
      case 'console':
        reply({ ok: true, value: consoleLines.splice(0) });
        break;
      case 'mouse': {
        const m = page.mouse;
        const opts = { button: req.button || 'left' };
        if (req.action === 'move') await m.move(req.x, req.y, { steps: req.steps || 1 });
        else if (req.action === 'down') { await m.move(req.x, req.y); await m.down(opts); }
        else if (req.action === 'up') { await m.move(req.x, req.y); await m.up(opts); }
        else if (req.action === 'click') await m.click(req.x, req.y, { ...opts, clickCount: req.count || 1 });
        else if (req.action === 'wheel') { await m.move(req.x, req.y); await m.wheel(req.dx || 0, req.dy || 0); }
        else throw new Error(`unknown mouse action ${req.action}`);
        reply({ ok: true });
        break;
      }
      case 'keyboard': {
        const k = page.keyboard;
        if (req.action === 'type') await k.type(req.text, { delay: req.delay || 0 });
        else if (req.action === 'press') await k.press(req.key);
        else if (req.action === 'down') await k.down(req.key);
        else if (req.action === 'up') await k.up(req.key);
        else if (req.action === 'insert') await k.insertText(req.text);
        else throw new Error(`unknown keyboard action ${req.action}`);
        reply({ ok: true });
        break;
      }
      case 'files':
        await page.setInputFiles(req.selector, req.paths);
        reply({ ok: true });
        break;
      case 'download': {
        const [download] = await Promise.all([page.waitForEvent('download'), page.click(req.selector)]);
        await download.saveAs(req.path);
        reply({ ok: true, value: download.suggestedFilename() });
        break;
      }
      case 'grant':
        await context.grantPermissions(req.permissions, req.origin ? { origin: req.origin } : {});
        reply({ ok: true });
        break;
      case 'close':
        reply({ ok: true });
        await context.close();
        process.exit(0);
      default:
        reply({ ok: false, error: `unknown command ${req.cmd}` });
    }
  } catch (e) {
    reply({ ok: false, error: String(e && e.message ? e.message : e) });
  }
}
await context.close();
