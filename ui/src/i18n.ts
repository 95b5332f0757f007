// Every string the desktop app shows, in English and Simplified Chinese.
// Keys are stable; `{name}` placeholders are filled by `t`. A key missing in
// one language is a test failure (i18n.test.ts), never a blank label.

export const LANGUAGES = ['en', 'zh-CN'] as const;
export type Language = (typeof LANGUAGES)[number];

const en = {
  'app.title': 'Holdfast',
  'tab.share': 'Share this screen',
  'tab.connect': 'Connect to a computer',
  'tab.settings': 'Settings',

  'host.heading': 'Share this screen',
  'host.lead': 'Tell the person helping you this ID and code.',
  'host.id': 'ID',
  'host.code': 'Code',
  'host.link': 'Or send this link:',
  'host.copy': 'Copy',
  'host.copied': 'Copied',
  'host.allowControl': 'Allow viewers to control this computer',
  'host.display': 'Screen to share',
  'host.displayOption': 'Screen {n} ({w}×{h})',
  'host.stop': 'Stop sharing',
  'host.viewerItem': 'Viewer {n}: {state}, {mode}',
  'host.remove': 'Remove',
  'host.start': 'Share again',
  'host.newSession': 'Start a new session',
  'host.viewers': '{n} viewer(s) connected',

  'state.starting': 'Starting…',
  'state.waiting': 'Waiting for a viewer',
  'state.connecting': 'Viewer connecting…',
  'state.connected': 'Connected',
  'state.disconnected': 'Connection lost',
  'state.reconnecting': 'Reconnecting…',
  'state.reconnectingAttempt': 'Reconnecting (attempt {n})',
  'state.reconnectingRetry': 'Reconnecting (attempt {n}), next try in {s} s',
  'state.failed': 'Connection failed',
  'state.ended': 'Session ended',

  'reconnect.button': 'Reconnect',
  'reconnect.window': 'The session can be resumed for {left} more (of {total}).',
  'ended.message': 'This session has ended. Start a new one to share again.',
  'ended.expiredViewer': 'The session ended: the viewer did not come back within {window}.',
  'ended.expiredServer': 'The session ended: the connection to the server did not come back within {window}.',

  'quality.good': 'Good',
  'quality.fair': 'Fair',
  'quality.poor': 'Poor',
  'quality.unknown': 'Measuring…',
  'quality.details': 'Latency {latency} ms · loss {loss} % · jitter {jitter} ms · {fps} fps · {bitrate}',
  'quality.label': 'Connection quality',

  'consent.title': 'Someone wants to connect',
  'consent.body': 'A viewer at {address} entered your ID and code.',
  'consent.left': 'Refused automatically in {s} s.',
  'consent.control': 'Allow control',
  'consent.view': 'View only',
  'consent.deny': 'Deny',

  'toast.joinRequest': 'A viewer at {address} asks to connect.',
  'toast.joined': 'A viewer joined ({mode}).',
  'toast.joinedControl': 'with control',
  'toast.joinedView': 'view only',
  'toast.left': 'The viewer left.',
  'toast.refused': 'Refused a viewer the server tried to let in without your consent.',
  'toast.checkFailed': 'A viewer at {address} gave a wrong code and was turned away.',
  'toast.intercepted': 'Someone in the middle tried to connect (from {address}): refused.',
  'toast.codeChanged': 'Too many wrong codes: the code changed. Give the new one to the person you help.',
  'toast.lostServer': 'Lost the connection to the server.',
  'toast.lostViewer': 'Lost the connection to the viewer.',
  'toast.reconnectingServer': 'Reconnecting to the server (attempt {n}).',
  'toast.reconnectingViewer': 'Repairing the connection to the viewer (attempt {n}).',
  'toast.restoredServer': 'Connection to the server restored.',
  'toast.restoredViewer': 'Connection to the viewer restored.',
  'toast.framesDropped': 'The network is slow: skipped frames to keep up ({n}).',
  'toast.expiringSoon': 'The session ends in {left} unless the connection comes back.',
  'toast.expired': 'The session has ended.',
  'toast.dismiss': 'Dismiss',

  'viewer.heading': 'Connect to a computer',
  'viewer.lead': 'Enter the ID and code the other person sees.',
  'viewer.id': 'ID',
  'viewer.code': 'Code',
  'viewer.connect': 'Connect',
  'viewer.disconnect': 'Disconnect',
  'viewer.server': 'Server',
  'viewer.serverHint': 'The address of the host\'s signalling server; empty for this app\'s own.',
  'viewer.viewOnly': 'View only',
  'viewer.takeControl': 'Take control',
  'viewer.stats': '{w}×{h} · {fps} fps · latency {latency} · {bitrate} · {decoder}',
  'viewer.decoderWebview': 'decoded by WebCodecs',
  'viewer.decoderRust': 'decoded by OpenH264',
  'viewer.relayed': 'relayed',
  'viewer.controlOn': 'You control this computer.',
  'viewer.controlOff': 'View only: your input is not sent.',
  'viewer.hostAway': 'The host lost its connection to the server; the picture may pause.',
  'viewer.state.starting': 'Contacting the server…',
  'viewer.state.waiting': 'Waiting for the other person to accept…',
  'viewer.state.connecting': 'Connecting…',
  'viewer.ended': 'The session has ended.',
  'toast.admitted': 'Connected ({mode}).',
  'toast.lostHost': 'Lost the connection to the host.',
  'toast.reconnectingHost': 'Repairing the connection to the host (attempt {n}).',
  'toast.restoredHost': 'Connection to the host restored.',
  'toast.controlOn': 'The host gave you control.',
  'toast.controlOff': 'The host switched your control off.',
  'toast.hostAway': 'The host lost its connection to the server.',
  'toast.hostBack': 'The host is back.',

  'settings.heading': 'Settings',
  'settings.signal': 'Signalling server',
  'settings.signalHint': 'Leave empty to use the server built into this app.',
  'settings.ice': 'STUN and TURN servers',
  'settings.iceHint': 'One per line: URL, then username and credential for TURN, separated by spaces.',
  'settings.fps': 'Frame rate (fps)',
  'settings.quality': 'Picture quality',
  'settings.qualityLow': 'Low (slow networks)',
  'settings.qualityBalanced': 'Balanced',
  'settings.qualityHigh': 'High (fast networks)',
  'settings.keepalive': 'Keepalive interval (s)',
  'settings.grace': 'Resume window (s)',
  'settings.graceHint': 'How long a dropped session can be resumed without a new code (30–3600).',
  'settings.logLevel': 'Log detail',
  'settings.language': 'Language',
  'settings.languageSystem': 'As the system',
  'settings.save': 'Save',
  'settings.saved': 'Saved. New settings apply to the next session.',
  'settings.openLogs': 'Open logs folder',
  'settings.device': 'Device ID',
  'settings.problem': 'The saved settings could not be used: {reason}',
} as const;

export type Key = keyof typeof en;

const zhCN: Record<Key, string> = {
  'app.title': 'Holdfast',
  'tab.share': '共享此屏幕',
  'tab.connect': '连接到其他电脑',
  'tab.settings': '设置',

  'host.heading': '共享此屏幕',
  'host.lead': '把下面的 ID 和验证码告诉帮助你的人。',
  'host.id': 'ID',
  'host.code': '验证码',
  'host.link': '或者发送此链接：',
  'host.copy': '复制',
  'host.copied': '已复制',
  'host.allowControl': '允许对方控制这台电脑',
  'host.display': '要共享的屏幕',
  'host.displayOption': '屏幕 {n}（{w}×{h}）',
  'host.stop': '停止共享',
  'host.viewerItem': '观看者 {n}：{state}，{mode}',
  'host.remove': '移除',
  'host.start': '重新共享',
  'host.newSession': '开始新的会话',
  'host.viewers': '已连接 {n} 位观看者',

  'state.starting': '正在启动…',
  'state.waiting': '等待观看者连接',
  'state.connecting': '观看者正在连接…',
  'state.connected': '已连接',
  'state.disconnected': '连接已断开',
  'state.reconnecting': '正在重新连接…',
  'state.reconnectingAttempt': '正在重新连接（第 {n} 次）',
  'state.reconnectingRetry': '正在重新连接（第 {n} 次），{s} 秒后重试',
  'state.failed': '连接失败',
  'state.ended': '会话已结束',

  'reconnect.button': '重新连接',
  'reconnect.window': '会话还可以恢复 {left}（共 {total}）。',
  'ended.message': '此会话已结束。开始新的会话即可再次共享。',
  'ended.expiredViewer': '会话已结束：观看者未在 {window} 内重新连接。',
  'ended.expiredServer': '会话已结束：与服务器的连接未在 {window} 内恢复。',

  'quality.good': '良好',
  'quality.fair': '一般',
  'quality.poor': '较差',
  'quality.unknown': '正在测量…',
  'quality.details': '延迟 {latency} 毫秒 · 丢包 {loss}% · 抖动 {jitter} 毫秒 · {fps} 帧/秒 · {bitrate}',
  'quality.label': '连接质量',

  'consent.title': '有人请求连接',
  'consent.body': '来自 {address} 的观看者输入了你的 ID 和验证码。',
  'consent.left': '{s} 秒后自动拒绝。',
  'consent.control': '允许控制',
  'consent.view': '仅观看',
  'consent.deny': '拒绝',

  'toast.joinRequest': '来自 {address} 的观看者请求连接。',
  'toast.joined': '观看者已加入（{mode}）。',
  'toast.joinedControl': '可控制',
  'toast.joinedView': '仅观看',
  'toast.left': '观看者已离开。',
  'toast.refused': '已拒绝服务器未经你同意试图放入的观看者。',
  'toast.checkFailed': '来自 {address} 的观看者输入了错误的代码，已被拒绝。',
  'toast.intercepted': '有人试图从中间连接（来自 {address}）：已拒绝。',
  'toast.codeChanged': '错误代码太多：代码已更换。请把新代码告诉你要帮助的人。',
  'toast.lostServer': '与服务器的连接已断开。',
  'toast.lostViewer': '与观看者的连接已断开。',
  'toast.reconnectingServer': '正在重新连接服务器（第 {n} 次）。',
  'toast.reconnectingViewer': '正在修复与观看者的连接（第 {n} 次）。',
  'toast.restoredServer': '与服务器的连接已恢复。',
  'toast.restoredViewer': '与观看者的连接已恢复。',
  'toast.framesDropped': '网络较慢：已跳过部分画面以保持同步（{n}）。',
  'toast.expiringSoon': '如果连接未能恢复，会话将在 {left} 后结束。',
  'toast.expired': '会话已结束。',
  'toast.dismiss': '关闭',

  'viewer.heading': '连接到其他电脑',
  'viewer.lead': '输入对方看到的 ID 和验证码。',
  'viewer.id': 'ID',
  'viewer.code': '验证码',
  'viewer.connect': '连接',
  'viewer.disconnect': '断开',
  'viewer.server': '服务器',
  'viewer.serverHint': '对方信令服务器的地址；留空则使用本应用自己的服务器。',
  'viewer.viewOnly': '仅观看',
  'viewer.takeControl': '接管控制',
  'viewer.stats': '{w}×{h} · {fps} 帧/秒 · 延迟 {latency} · {bitrate} · {decoder}',
  'viewer.decoderWebview': 'WebCodecs 解码',
  'viewer.decoderRust': 'OpenH264 解码',
  'viewer.relayed': '经中继',
  'viewer.controlOn': '你正在控制这台电脑。',
  'viewer.controlOff': '仅观看：你的输入不会发送。',
  'viewer.hostAway': '对方与服务器的连接已断开，画面可能暂停。',
  'viewer.state.starting': '正在联系服务器…',
  'viewer.state.waiting': '正在等待对方同意…',
  'viewer.state.connecting': '正在连接…',
  'viewer.ended': '会话已结束。',
  'toast.admitted': '已连接（{mode}）。',
  'toast.lostHost': '与对方电脑的连接已断开。',
  'toast.reconnectingHost': '正在修复与对方电脑的连接（第 {n} 次）。',
  'toast.restoredHost': '与对方电脑的连接已恢复。',
  'toast.controlOn': '对方已允许你控制。',
  'toast.controlOff': '对方已关闭你的控制权。',
  'toast.hostAway': '对方与服务器的连接已断开。',
  'toast.hostBack': '对方已重新连接。',

  'settings.heading': '设置',
  'settings.signal': '信令服务器',
  'settings.signalHint': '留空则使用本应用内置的服务器。',
  'settings.ice': 'STUN 和 TURN 服务器',
  'settings.iceHint': '每行一个：URL，TURN 还需用户名和密码，以空格分隔。',
  'settings.fps': '帧率（帧/秒）',
  'settings.quality': '画质',
  'settings.qualityLow': '低（慢速网络）',
  'settings.qualityBalanced': '均衡',
  'settings.qualityHigh': '高（快速网络）',
  'settings.keepalive': '保活间隔（秒）',
  'settings.grace': '恢复窗口（秒）',
  'settings.graceHint': '断开的会话在多长时间内可以无需新验证码恢复（30–3600）。',
  'settings.logLevel': '日志详细程度',
  'settings.language': '语言',
  'settings.languageSystem': '跟随系统',
  'settings.save': '保存',
  'settings.saved': '已保存。新设置将在下一次会话生效。',
  'settings.openLogs': '打开日志文件夹',
  'settings.device': '设备 ID',
  'settings.problem': '无法使用已保存的设置：{reason}',
};

export const CATALOGUE: Record<Language, Record<Key, string>> = { en, 'zh-CN': zhCN };

let current: Language = 'en';

/** The language to use: the setting if any, else the system's if we have it, else English. */
export function pickLanguage(setting: string | null | undefined, system: readonly string[]): Language {
  if (setting && (LANGUAGES as readonly string[]).includes(setting)) return setting as Language;
  for (const l of system) {
    if (/^zh(-(CN|Hans|SG))?/i.test(l) && !/^zh-(TW|HK|Hant)/i.test(l)) return 'zh-CN';
    if (/^en/i.test(l)) return 'en';
  }
  return 'en';
}

export function setLanguage(lang: Language): void {
  current = lang;
}

export function language(): Language {
  return current;
}

/** The string for `key` in the current language, with `{name}` filled from `params`. */
export function t(key: Key, params: Record<string, string | number> = {}): string {
  const template = CATALOGUE[current][key] ?? en[key];
  return template.replace(/\{(\w+)\}/g, (m, name: string) => (name in params ? String(params[name]) : m));
}
