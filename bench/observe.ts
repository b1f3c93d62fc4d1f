/**
 * The observer with 100,000 processes in one node, in headless Chromium (/usr/bin/chromium):
 * time to first render of the processes page (goto until its 50 rows are drawn), and how many
 * times a second the page redraws with the data when told to every 250 ms. Baseline, served in the
 * same run by a bare node:http server: a static page of a 50-row table (first render), and that
 * page redrawing from a static JSON page on the same 250 ms server-sent tick (update rate).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { chromium, type Page } from 'playwright-core';
import { System, observe } from '../src/index.js';
import { measure, now, row, within, type Benchmark } from './lib.js';

const CHROMIUM = '/usr/bin/chromium';
const TICK_MS = 250;
const WINDOW_MS = 4_000;
const TINY = `
import { receive, on, spawn } from 'subnode/process';
export function idle() { return receive(on('stop', () => 0)); }
export function many(n: number) { for (let i = 0; i < n; i++) spawn(idle); return idle(); }
`;

const ROWS = Array.from({ length: 50 }, (_, i) => ({ pid: `<big.${i + 1}>`, status: 'waiting', mailbox: 0 }));
const STATIC_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>static</title></head><body>
<table id="t"><tbody>${ROWS.map((r) => `<tr><td>${r.pid}</td><td>${r.status}</td><td>${r.mailbox}</td></tr>`).join('')}</tbody></table>
<script>
window.renders = 0;
new EventSource('/tick').addEventListener('tick', async () => {
  const rows = await (await fetch('/rows')).json();
  const body = document.createElement('tbody');
  for (const r of rows) { const tr = body.insertRow(); for (const v of [r.pid, r.status, r.mailbox]) tr.insertCell().textContent = v; }
  document.getElementById('t').tBodies[0].replaceWith(body);
  window.renders++;
});
</script></body></html>`;

function staticServer(): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/rows') return res.end(JSON.stringify(ROWS));
    if (req.url === '/tick') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const timer = setInterval(() => res.write('event: tick\ndata: {}\n\n'), TICK_MS);
      req.on('close', () => clearInterval(timer));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(STATIC_PAGE);
  });
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done(server)));
}

async function firstRender(page: Page, url: string, rows: string): Promise<number> {
  await page.goto('about:blank');
  const t0 = now();
  await page.goto(url);
  await page.locator(rows).nth(49).waitFor();
  return now() - t0;
}

async function updateRate(read: () => Promise<number>): Promise<number> {
  const before = await read();
  const t0 = now();
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  return ((await read()) - before) / ((now() - t0) / 1000);
}

export const observeBench: Benchmark = {
  name: 'observe',
  description: 'web observer with 100,000 processes (Chromium) vs a plain static page',
  async run({ reps, scale, log }) {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (bash scripts/ensure-tools.sh installs it)`);
    const count = Math.round(100_000 * scale);
    const system = await System.start({ nodes: [{ name: 'big' }] });
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    const plain = await staticServer();
    try {
      await system.node('big').load('tiny', TINY);
      await system.node('big').spawn('tiny', 'many', [count]);
      const deadline = Date.now() + 60_000;
      while ((await system.node('big').processes()).length <= count) if (Date.now() > deadline) throw new Error('spawning took over 60 s');
      const observer = await observe(system, { tickMs: TICK_MS });
      const page = await browser.newPage();
      const plainUrl = `http://127.0.0.1:${(plain.address() as AddressInfo).port}/`;
      const url = `${observer.url}#/processes?node=big`;
      try {
        const first: number[] = [];
        const base: number[] = [];
        for (let r = -1; r < reps; r++) {
          const f = await within(firstRender(page, url, '#processes tbody tr'), 60_000, 'observer first render');
          const b = await within(firstRender(page, plainUrl, '#t tbody tr'), 10_000, 'static first render');
          if (r >= 0) {
            first.push(f);
            base.push(b);
          }
        }
        log(`  first render: observer ${first.map((v) => v.toFixed(0)).join(', ')} ms; static ${base.map((v) => v.toFixed(1)).join(', ')} ms`);

        await page.goto(url);
        await page.locator('#processes tbody tr').nth(49).waitFor();
        // Counted in the page: each redraw stamps #status with data-rendered.
        const countRedraws = `(() => { if (!window.watching) { window.watching = true; window.renders = 0;
          new MutationObserver(() => { window.renders++; }).observe(document.getElementById('status'), { attributes: true, attributeFilter: ['data-rendered'] }); }
          return window.renders; })()`;
        const observerRate = await updateRate(() => page.evaluate<number>(countRedraws));
        await page.goto(plainUrl);
        const plainRate = await updateRate(() => page.evaluate<number>('window.renders'));
        log(`  updates/s (tick every ${TICK_MS} ms): observer ${observerRate.toFixed(2)}, static ${plainRate.toFixed(2)}`);
        return [
          row(
            `observer: first render of the processes page, ${count.toLocaleString('en')} processes`,
            measure('ms', first, 'ms'),
            measure('static 50-row page, same browser', base, 'ms'),
          ),
          row(
            `observer: redraws per second with ${count.toLocaleString('en')} processes (tick ${TICK_MS} ms)`,
            measure('updates/s', [observerRate], 'updates/s'),
            measure(`static page redrawn from JSON on the same tick`, [plainRate], 'updates/s'),
          ),
        ];
      } finally {
        await observer.close();
      }
    } finally {
      await browser.close();
      await new Promise((done) => plain.close(done));
      await system.stop();
    }
  },
};
