/**
 * The observer in a real browser: headless Chromium (the system's /usr/bin/chromium, driven by
 * playwright-core) on the dashboard of a System embedded in this test. It sees both nodes, watches
 * the code page change as a new version loads, sees the process left in the old version
 * highlighted, purges it from the page (confirming), and watches a migration move a server.
 * Screenshots go to test-artifacts/observe/ (ignored by git).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { System } from '../src/host/system.js';
import type { Pid } from '../src/kernel/pid.js';
import { observe, type Observer } from '../src/observe/index.js';
import { counterV1, counterV2 } from './fixtures/counter.js';
import { until } from './helpers/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = resolve('test-artifacts/observe');
const WAIT_MS = 15_000;

let system: System;
let observer: Observer;
let browser: Browser;
let page: Page;
let pinger: Pid;
let server: Pid;

const shot = (name: string) => page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: the observer's browser tests drive the system Chromium. Install it with \`bash scripts/ensure-tools.sh\` (npm test runs it first) or \`apt-get install chromium\`.`,
    );
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  system = await System.start({ nodes: [{ name: 'a' }, { name: 'b' }] });
  const a = system.node('a');
  await a.load('pinger', { path: resolve('examples/modules/v1/pinger.ts') });
  await a.load('counter', counterV1);
  await system.node('b').load('counter', counterV1);
  pinger = await a.spawn('pinger', 'start', [], { name: 'critical' });
  server = await a.startServer('counter', [5], { name: 'hits' });
  observer = await observe(system, { tickMs: 250 });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  page.setDefaultTimeout(WAIT_MS);
});

afterAll(async () => {
  await browser?.close();
  await observer?.close();
  await system?.stop();
});

describe('the dashboard in a browser', () => {
  it('shows both nodes', async () => {
    await page.goto(observer.url);
    await page.locator('#nodes tr[data-node="a"] td.processes').filter({ hasText: '2' }).waitFor();
    await page.locator('#nodes tr[data-node="b"]').waitFor();
    expect(await page.locator('#nodes tbody tr').count()).toBe(2);
    expect(await page.locator('#nodes tr[data-node="a"] td.status').textContent()).toBe('running');
    await shot('nodes');
  });

  it('lists processes, paged and sorted by the server', async () => {
    await page.goto(`${observer.url}#/processes`);
    await page.locator(`#processes tr[data-pid="${pinger}"]`).waitFor();
    await page.locator('th[data-sort="name"]').click();
    await until('rows sorted by name', async () => (await page.locator('#processes tbody tr td:nth-child(3)').allTextContents()).join(',') === 'critical,hits');
    await shot('processes');
  });

  it('watches the code page change as a version loads, highlights the lingering process, purges it after confirming', async () => {
    await page.goto(`${observer.url}#/code`);
    const row = page.locator('#code tr[data-module="pinger"][data-node="a"]');
    await row.locator('span.version[data-version="1"][data-state="current"]').waitFor();
    expect(await row.getAttribute('class')).not.toContain('lingering');

    await system.node('a').load('pinger', { path: resolve('examples/modules/v2/pinger.ts') });
    await row.locator('span.version[data-version="2"][data-state="current"]').waitFor();
    await row.locator('span.version.lingering[data-version="1"][data-state="old"]').waitFor();
    await until('the row highlighted', async () => (await row.getAttribute('class'))?.includes('lingering'));
    expect(await row.locator('td.pids').textContent()).toContain(pinger);
    await shot('code-lingering');

    await row.locator('button.purge').click();
    const dialog = page.locator('dialog.confirm');
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain('1 process(es) still run old code of pinger');
    await shot('purge-confirm');
    await dialog.locator('button.ok').click();
    await until('v1 gone from the page', async () => (await row.locator('span.version[data-version="1"]').count()) === 0);
    expect(await row.getAttribute('class')).not.toContain('lingering');
    expect(await system.node('a').processInfo(pinger)).toBeUndefined();
    await page
      .locator('#notice')
      .filter({ hasText: `killed ${pinger}` })
      .waitFor();
  });

  it('a purge cancelled in the dialog does nothing', async () => {
    await system.node('a').load('pinger', { path: resolve('examples/modules/v1/pinger.ts') });
    const row = page.locator('#code tr[data-module="pinger"][data-node="a"]');
    await row.locator('button.purge').click();
    await page.locator('dialog.confirm button.cancel').click();
    await page.waitForTimeout(0);
    expect((await system.node('a').modules()).find((m) => m.name === 'pinger')!.versions.length).toBe(2);
  });

  it('watches a migration move a process', async () => {
    await page.goto(`${observer.url}#/process?pid=${encodeURIComponent(server)}`);
    const node = page.locator('td[data-field="node"]');
    await node.filter({ hasText: /^a$/ }).waitFor();
    expect(await page.locator('pre.state').textContent()).toContain('"count": 5');
    await page.locator('select.target').selectOption('b');
    await page.locator('button.migrate').click();
    await page.locator('dialog.confirm button.ok').click();
    await node.filter({ hasText: /^b$/ }).waitFor();
    expect(system.locate(server).node).toBe('b');
    await page.locator('td[data-field="location"]').filter({ hasText: '1 move(s)' }).waitFor();
    await page
      .locator('#ops li.done')
      .filter({ hasText: `migrated ${server} from a to b` })
      .waitFor();
    await shot('migrated');

    await page.goto(`${observer.url}#/events`);
    await page.locator('#events li[data-type="process_migrated"]').first().waitFor();
    await page.locator('#events li[data-type="module_purged"]').first().waitFor();
    await shot('events');
  });

  it('applies an upgrade plan only after its dry run, confirming', async () => {
    await page.goto(`${observer.url}#/upgrade`);
    const apply = page.locator('button.apply');
    await page.locator('#plan').fill(JSON.stringify({ modules: [{ module: 'counter', source: { code: counterV2 } }], nodes: ['b'] }));
    expect(await apply.isDisabled()).toBe(true);
    await page.locator('button.dry-run').click();
    await page.locator('#report tr[data-node="b"].status-planned').waitFor();
    expect(await page.locator('#report').textContent()).toContain('load counter');
    expect((await system.node('b').modules()).find((m) => m.name === 'counter')!.versions).toHaveLength(1);
    await until('apply enabled', async () => !(await apply.isDisabled()));
    await apply.click();
    await page.locator('dialog.confirm button.ok').click();
    await page.locator('#report tr[data-node="b"].status-upgraded').waitFor();
    expect(await system.call(server, 'vsn')).toBe(2);
    await shot('upgraded');
  });
});
