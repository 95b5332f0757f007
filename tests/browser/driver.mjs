// A line-protocol driver for Debian's Chromium, so Rust tests can use a real
// browser. One JSON request per stdin line, one JSON reply per stdout line:
//   {"cmd":"open","url":"..."}            -> {"ok":true}
//   {"cmd":"eval","expr":"..."}           -> {"ok":true,"value":...}
//   {"cmd":"screenshot","path":"..."}     -> {"ok":true}
//   {"cmd":"console"}                     -> {"ok":true,"value":[...lines]}
//   {"cmd":"close"}                       -> {"ok":true} and exit
// Chromium never downloads anything: executablePath is the system binary.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const userDataDir = mkdtempSync(join(tmpdir(), 'holdfast-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  viewport: { width: Number(process.env.VIEWPORT_W || 1280), height: Number(process.env.VIEWPORT_H || 800) },
  ignoreHTTPSErrors: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    // Tests run in a private network namespace with only loopback: let WebRTC
    // use it, and publish raw addresses instead of mDNS names.
    '--allow-loopback-in-peer-connection',
    '--disable-features=WebRtcHideLocalIpsWithMdns',
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
