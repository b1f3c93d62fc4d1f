/**
 * The observer's server without a browser: the token (403 without it), server-side paging of
 * 100,000 processes, Prometheus text, and the telemetry (diagnostics channels, OpenTelemetry
 * counters through the global API once a MeterProvider is registered).
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { resolve } from 'node:path';
import { metrics, type Meter, type MeterProvider } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { System } from '../src/host/system.js';
import { CHANNELS } from '../src/host/telemetry.js';
import type { Pid } from '../src/kernel/pid.js';
import { observe, type Observer, type ProcessPage } from '../src/index.js';
import { counterV1, counterV2 } from './fixtures/counter.js';

const MANY = 100_000;
const TINY = `
import { receive, on, spawn } from 'subnode/process';
export function idle() { return receive(on('stop', () => 0)); }
export function many(n: number) { for (let i = 0; i < n; i++) spawn(idle); return idle(); }
`;

async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('the observer server', () => {
  let system: System;
  let observer: Observer;
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`http://127.0.0.1:${observer.port}${path}`, { headers });

  beforeAll(async () => {
    system = await System.start({ nodes: [{ name: 'big' }, { name: 'small' }] });
    await system.node('big').load('tiny', TINY);
    await system.node('big').spawn('tiny', 'many', [MANY]);
    await until('100,000 processes', async () => (await system.node('big').processes()).length > MANY, 60_000);
    observer = await observe(system, { metrics: true });
  }, 90_000);

  afterAll(async () => {
    await observer?.close();
    await system?.stop();
  });

  it('serves only 127.0.0.1 and answers 403 without the token, or with a wrong one', async () => {
    expect(observer.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${observer.port}/\\?token=[0-9a-f]{48}$`));
    for (const path of ['/', '/api/nodes', '/api/processes', '/api/stream', '/assets/app.js', '/metrics']) {
      expect((await get(path)).status, path).toBe(403);
      expect((await get(`${path}${path.includes('?') ? '&' : '?'}token=${'0'.repeat(48)}`)).status, path).toBe(403);
    }
    const page = await get(`/?token=${observer.token}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Strict/);
    expect((await get('/api/nodes', { 'x-subnode-token': observer.token })).status).toBe(200);
    // Actions need the token in a header: a cross-site form cannot set one.
    const action = (headers: Record<string, string>, query = '') =>
      fetch(`http://127.0.0.1:${observer.port}/api/action${query}`, { method: 'POST', headers, body: '{"action":"restart","node":"small"}' });
    expect((await action({}, `?token=${observer.token}`)).status).toBe(403);
    expect((await action({ cookie: `subnode_observe_${observer.port}=${observer.token}` })).status).toBe(403);
  });

  it('pages 100,000 processes on the server: one page of rows, quickly, sorted and filtered there', async () => {
    const page = async (query: string) => {
      const started = performance.now();
      const res = await get(`/api/processes?${query}`, { 'x-subnode-token': observer.token });
      expect(res.status).toBe(200);
      return { body: (await res.json()) as ProcessPage, ms: performance.now() - started };
    };
    await page('node=big'); // the first view lists the node once
    const first = await page('node=big&sort=pid&offset=0&limit=50');
    expect(first.body.total).toBe(MANY + 1);
    expect(first.body.rows).toHaveLength(50);
    expect(first.body.rows.map((r) => r.pid).slice(0, 3)).toEqual(['<big.1>', '<big.2>', '<big.3>']);
    const last = await page('node=big&sort=pid&desc=1&offset=50000&limit=100');
    expect(last.body.rows).toHaveLength(100);
    expect(last.body.rows[0]!.pid).toBe(`<big.${MANY + 1 - 50000}>`);
    const filtered = await page(`filter=${encodeURIComponent('tiny.many')}`);
    expect(filtered.body.matched).toBe(1);
    expect(filtered.body.rows[0]!.pid).toBe('<big.1>');
    const byMailbox = await page('sort=mailbox&desc=1&limit=20');
    expect(byMailbox.body.rows).toHaveLength(20);
    // A page is a slice of a snapshot kept beside the system: well under a second even with the other core busy.
    for (const p of [first, last, filtered, byMailbox]) expect(p.ms).toBeLessThan(1_500);
    const size = JSON.stringify(last.body).length;
    expect(size).toBeLessThan(50_000);
  });

  it('serves Prometheus text on /metrics with the token', async () => {
    const res = await get('/metrics', { authorization: `Bearer ${observer.token}` });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    const text = await res.text();
    expect(text).toContain('# TYPE subnode_processes gauge');
    expect(text).toMatch(new RegExp(`subnode_processes\\{node="big"\\} ${MANY + 1}`));
    expect(text).toContain('subnode_node_up{node="small",kind="thread",status="running"} 1');
    expect(text).toContain('# TYPE subnode_process_exits_total counter');
  });
});

describe('telemetry', () => {
  it('publishes spawns, exits, loads, upgrades, migrations and host-routed message counts on diagnostics channels', async () => {
    const seen: Record<string, unknown[]> = {};
    const listeners = Object.values(CHANNELS).map((name) => {
      const listener = (message: unknown) => (seen[name] ??= []).push(message);
      subscribe(name, listener);
      return [name, listener] as const;
    });
    const system = await System.start({ nodes: [{ name: 'a' }, { name: 'b' }] });
    try {
      await system.node('a').load('counter', counterV1);
      await system.node('b').load('counter', counterV1);
      await system.node('a').load('pinger', { path: resolve('examples/modules/v1/pinger.ts') });
      const server = await system.node('a').startServer('counter', [1]);
      const pinger = await system.node('a').spawn('pinger', 'start');
      const inbox = system.inbox();
      for (let i = 0; i < 3; i++) system.send(pinger, { type: 'ping', from: inbox.pid });
      for (let i = 0; i < 3; i++) await inbox.receive(undefined, 5_000);
      await system.migrate(server, 'b');
      await system.upgrade({ modules: [{ module: 'counter', source: { code: counterV2 } }], nodes: ['b'] });
      await system.node('a').exit(pinger, 'boom'); // the kernel reports abnormal exits
      await until('the exit', () => seen[CHANNELS.exit]?.length);
      expect(seen[CHANNELS.spawn]).toEqual(
        expect.arrayContaining([
          { node: 'a', pid: server, module: 'counter', fn: 'init', kind: 'server' },
          { node: 'a', pid: pinger, module: 'pinger', fn: 'start', kind: 'process' },
        ]),
      );
      expect(seen[CHANNELS.exit]).toContainEqual(expect.objectContaining({ type: 'process_exit', pid: pinger as Pid, reason: 'boom' }));
      expect(seen[CHANNELS.load]).toContainEqual({ type: 'module_loaded', node: 'a', module: 'pinger', version: 1 });
      expect(seen[CHANNELS.migration]).toContainEqual(expect.objectContaining({ type: 'process_migrated', pid: server, from: 'a', to: 'b' }));
      expect(seen[CHANNELS.upgrade]).toContainEqual({ type: 'upgrade_node', node: 'b', phase: 'upgraded' });
      const routed = (seen[CHANNELS.messages] ?? []) as { node: string; count: number }[];
      expect(routed.filter((m) => m.node === 'a').reduce((n, m) => n + m.count, 0)).toBeGreaterThanOrEqual(3);
      expect(seen[CHANNELS.node]).toContainEqual({ type: 'node_started', node: 'a', creation: 0 });
      expect(seen[CHANNELS.event]!.length).toBeGreaterThan(5);
    } finally {
      for (const [name, listener] of listeners) unsubscribe(name, listener);
      await system.stop();
    }
  });

  it('counts through @opentelemetry/api: no-ops by default, real once a MeterProvider is registered', async () => {
    const added: [string, number, Record<string, unknown>][] = [];
    const instrument = (name: string) => ({
      add: (n: number, attrs: Record<string, unknown> = {}) => added.push([name, n, attrs]),
      addCallback: () => {},
      removeCallback: () => {},
    });
    const meter = { createCounter: instrument, createObservableGauge: instrument } as unknown as Meter;
    const provider: MeterProvider = { getMeter: () => meter };
    expect(metrics.setGlobalMeterProvider(provider)).toBe(true);
    const system = await System.start({ nodes: [{ name: 'a' }] });
    try {
      await system.node('a').load('counter', counterV1);
      const pid = await system.node('a').startServer('counter', [0]);
      await system.node('a').exit(pid, 'boom');
      await until('the exit counted', () => added.some(([name]) => name === 'subnode.process.exits'));
      expect(added).toContainEqual(['subnode.module.loads', 1, { node: 'a', module: 'counter' }]);
      expect(added).toContainEqual(['subnode.process.exits', 1, { node: 'a' }]);
    } finally {
      metrics.disable();
      await system.stop();
    }
  });
});
