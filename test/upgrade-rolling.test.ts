/**
 * Rolling upgrades inside a node (src/kernel/rolling.ts): one load, then the processes converted
 * in chunks with the node serving calls between them. On a local kernel: 10^4 servers under a
 * stream of calls (none fails, none meets new code with an old state, each state converted once,
 * one event); a codeChange failing midway (exactly who is on which version afterwards). Over a
 * System: the plan's `mode: 'rolling'`, its checks and its dry run.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { localKernel, type LocalKernel } from './helpers/local-kernel.js';
import { callFromHost, eventsOf, js } from './helpers/code-tools.js';
import { until } from './helpers/wait.js';
import { rollingUpgrade } from '../src/kernel/rolling.js';
import type { UpgradeStep } from '../src/kernel/upgrade.js';
import { pidRuns, type Pid } from '../src/kernel/pid.js';
import { System } from '../src/index.js';
import { forever } from '../policies/code.js';

/** v1's state `{ id, n }`; v2's `{ id, hits, conversions }`. A reply is `[vsn, count]`: NaN when code met a state of the other shape. */
const SRV_V1 = `
  export const vsn = 1;
  export function init(id: number) { return { id, n: 0 }; }
  export function handleCall(req: string, _f: unknown, s: any) {
    if (req === 'hit') return { reply: [1, s.n + 1], state: { id: s.id, n: s.n + 1 } };
    return { reply: [1, s.n], state: s };
  }
`;
const SRV_V2 = `
  export const vsn = 2;
  export function init(id: number) { return { id, hits: 0, conversions: 0 }; }
  export function handleCall(req: string, _f: unknown, s: any) {
    if (req === 'hit') return { reply: [2, s.hits + 1], state: { ...s, hits: s.hits + 1 } };
    if (req === 'conversions') return { reply: s.conversions, state: s };
    return { reply: [2, s.hits], state: s };
  }
  export function codeChange(_old: unknown, s: any, extra: any) {
    if (extra?.failAt === s.id) throw new Error('will not convert ' + s.id);
    return { id: s.id, hits: s.hits ?? s.n, conversions: (s.conversions ?? 0) + 1 };
  }
`;

/**
 * Callers: each calls the servers round robin, one call at a time, and counts calls, failures
 * (a timeout, or a reply that is not a number: code met a state of the other shape) and replies
 * by version, in `totals`.
 */
const CLIENT = `
  import { server, receive, on, after } from 'subnode';
  import * as me from './client';
  export const totals = { calls: 0, failed: 0, v1: 0, v2: 0, stop: false };
  export function start(pids: string[], i: number) { return me.loop(pids, i); }
  export function loop(pids: string[], i: number): unknown {
    if (totals.stop) return 'done';
    return server.call(pids[i % pids.length], 'hit', (r: [number, number]) => {
      totals.calls++;
      if (!Array.isArray(r) || !Number.isInteger(r[1])) totals.failed++;
      else if (r[0] === 1) totals.v1++;
      else totals.v2++;
      return me.loop(pids, i + 7);
    }, { timeout: 10000, onTimeout: () => { totals.failed++; return me.loop(pids, i + 7); } });
  }
`;

function steps(extra?: unknown): UpgradeStep[] {
  return [
    { op: 'suspend', modules: ['srv'] },
    { op: 'load', module: 'srv', js: js('srv', SRV_V2) },
    { op: 'codeChange', module: 'srv', extra },
    { op: 'resume' },
  ];
}

function servers(k: LocalKernel, n: number): Pid[] {
  k.load('srv', SRV_V1);
  return Array.from({ length: n }, (_, i) => k.kernel.startBehaviour('server', 'srv', [i]));
}

describe('pidRuns', () => {
  it('writes consecutive ids of one node and creation as one run', () => {
    const pids = ['<a.1>', '<a.2>', '<a.3>', '<b.4>', '<a.5>', '<a.7>', '<a.8.2>', '<a.9.2>', '<a.10.3>', '<a.11>', '<ab.12>', '<ab.13>'] as Pid[];
    expect(pidRuns(pids)).toEqual(['<a.1>..<a.3>', '<b.4>', '<a.5>', '<a.7>', '<a.8.2>..<a.9.2>', '<a.10.3>', '<a.11>', '<ab.12>..<ab.13>']);
    expect(pidRuns([])).toEqual([]);
  });
});

describe('rolling upgrade on one node', () => {
  it('converts 10^4 servers under a stream of calls: no call fails, each state converted once, one event', async () => {
    const k = localKernel();
    const pids = servers(k, 10_000);
    k.load('client', CLIENT);
    const totals = k.kernel.code.current('client').exports.totals as { calls: number; failed: number; v1: number; v2: number; stop: boolean };
    for (let c = 0; c < 4; c++) k.kernel.spawn('client', 'start', [pids, c * 2_500]);
    await until('calls flowing', () => totals.calls > 2_000);

    const report = rollingUpgrade(k.kernel, steps(), { chunk: 500 });
    // The load is done and the first chunk (up to 500, or 2 ms) converted at once; the rest wait their turn on v1.
    const waiting = k.kernel.lingering('srv').length;
    expect(waiting).toBeGreaterThanOrEqual(9_500);
    expect(waiting).toBeLessThan(10_000);
    const calls = totals.calls;
    const done = await report;
    totals.stop = true;

    expect(done).toMatchObject({ ok: true, suspended: 10_000, loaded: [{ module: 'srv', version: 2, previous: 1 }], lingering: { srv: [] } });
    expect(done.upgraded).toHaveLength(10_000);
    expect(new Set(done.upgraded)).toEqual(new Set(pids));
    expect(done.chunks).toBeGreaterThanOrEqual(20);
    // Calls were served between the chunks, and none failed or met a state of the other shape.
    expect(totals.calls).toBeGreaterThan(calls);
    expect(totals.failed).toBe(0);
    expect(totals.v1).toBeGreaterThan(0);
    await until('calls answered by v2', () => totals.v2 > 100);
    expect(totals.failed).toBe(0);
    // Each state converted exactly once.
    const conversions = new Set<number>();
    for (const pid of pids) conversions.add((k.kernel.getState(pid) as { conversions: number }).conversions);
    expect([...conversions]).toEqual([1]);
    // One event for the transaction (a macrotask after the commit), the pids as one run; no event per process.
    await until('the upgrade_converted event', () => eventsOf(k, 'upgrade_converted').length > 0);
    expect(eventsOf(k, 'code_changed')).toEqual([]);
    expect(eventsOf(k, 'upgrade_converted')).toEqual([
      { type: 'upgrade_converted', node: 'a', modules: ['srv'], mode: 'rolling', count: 10_000, pids: [`${pids[0]}..${pids.at(-1)}`], chunks: done.chunks },
    ]);
    expect(
      k.kernel
        .modules()
        .find((m) => m.name === 'srv')!
        .versions.map((v) => [v.version, v.state, v.processes]),
    ).toEqual([
      [1, 'old', 0],
      [2, 'current', 10_000],
    ]);
  });

  it('a process not yet converted answers from its version; checkProcessCode and lingering see it in old code', async () => {
    const k = localKernel();
    const pids = servers(k, 6);
    expect(await callFromHost(k, pids[5]!, 'hit')).toEqual([1, 1]);
    const report = rollingUpgrade(k.kernel, steps(), { chunk: 2, chunkMs: 1_000 });
    expect(k.kernel.lingering('srv').sort()).toEqual(pids.slice(2).sort());
    expect(k.kernel.checkProcessCode(pids[5]!, 'srv')).toBe(true);
    expect(k.kernel.checkProcessCode(pids[0]!, 'srv')).toBe(false);
    // Another load of the module waits for the rolling upgrade.
    expect(() => k.kernel.load('srv', js('srv', SRV_V2))).toThrow(/rolling upgrade of 'srv' is under way/);
    const done = await report;
    expect(done).toMatchObject({ ok: true, chunks: 3 });
    expect(await callFromHost(k, pids[5]!, 'hit')).toEqual([2, 2]);
    expect(k.kernel.lingering('srv')).toEqual([]);
  });

  it('a codeChange failing midway rolls back: exactly the processes of earlier chunks keep the new version', async () => {
    const k = localKernel();
    k.kernel.setPolicy(forever); // old versions kept while used: the kept processes' v2 and v1 both
    const pids = servers(k, 10);
    for (const pid of pids) await callFromHost(k, pid, 'hit');
    // Chunks of 3: [0 1 2] [3 4 5] [6 7 8] [9]; process 7 refuses in the third chunk.
    const report = await rollingUpgrade(k.kernel, steps({ failAt: 7 }), { chunk: 3, chunkMs: 1_000 });
    expect(report).toMatchObject({ ok: false, rolledBack: true, upgraded: [], loaded: [], chunks: 3, error: { code: 'refused', step: 2, op: 'codeChange' } });
    expect(report.error!.message).toMatch(/will not convert 7/);
    expect(report.kept).toEqual([{ module: 'srv', version: 2, pids: pids.slice(0, 6) }]);
    // Version 1 is current again; the kept processes are in version 2, now old code.
    expect(
      k.kernel
        .modules()
        .find((m) => m.name === 'srv')!
        .versions.map((v) => [v.version, v.state, v.processes]),
    ).toEqual([
      [2, 'old', 6],
      [1, 'current', 4],
    ]);
    expect(k.kernel.lingering('srv').sort()).toEqual(pids.slice(0, 6).sort());
    for (const [i, pid] of pids.entries()) {
      const running = i < 6 ? 2 : 1;
      // The third chunk (6, 7, 8) has its v1 states back exactly: one hit each.
      expect(await callFromHost(k, pid, 'hit')).toEqual([running, 2]);
    }
    expect(eventsOf(k, 'upgrade_converted')).toEqual([
      { type: 'upgrade_converted', node: 'a', modules: ['srv'], mode: 'rolling', count: 6, pids: [`${pids[0]}..${pids[5]}`], chunks: 3 },
    ]);
    expect(eventsOf(k, 'upgrade_rollback')).toEqual([
      { type: 'upgrade_rollback', node: 'a', step: 2, op: 'codeChange', reason: expect.stringMatching(/will not convert 7/) },
    ]);

    // A fixed plan afterwards converts everyone from whatever version each is on.
    const fixed = await rollingUpgrade(k.kernel, steps(), { chunk: 4 });
    expect(fixed).toMatchObject({ ok: true, loaded: [{ module: 'srv', version: 3, previous: 1 }] });
    expect(fixed.upgraded).toHaveLength(10);
    for (const pid of pids) expect(await callFromHost(k, pid, 'conversions')).toBe(pids.indexOf(pid) < 6 ? 2 : 1);
    expect(k.kernel.lingering('srv')).toEqual([]);
  });
});

describe('rolling upgrade plans', () => {
  let system: System | undefined;
  afterEach(async () => {
    await system?.stop();
    system = undefined;
  });

  it("mode 'rolling' upgrades a thread node's servers in chunks; the dry run says so; bad chunk options are refused", async () => {
    system = await System.start({ nodes: [{ name: 'a', modules: { srv: SRV_V1 } }] });
    const a = system.node('a');
    const pids: Pid[] = [];
    for (let i = 0; i < 40; i++) pids.push(await a.startServer('srv', [i]));
    const plan = { modules: [{ module: 'srv', source: { code: SRV_V2 } }], mode: 'rolling' as const, rolling: { chunk: 8, chunkMs: 1_000 } };

    const dry = await system.upgrade(plan, { dryRun: true });
    expect(dry.nodes[0]).toMatchObject({ status: 'planned' });
    expect((dry.nodes[0] as { steps: string[] }).steps[0]).toMatch(/^rolling: convert the processes using srv in chunks of up to 8 processes or 1000 ms/);

    await expect(system.upgrade({ ...plan, rolling: { chunk: 0 } })).rejects.toThrow(/rolling\.chunk: must be an integer >= 1/);
    await expect(system.upgrade({ ...plan, rolling: { chunk: 8, size: 3 } } as never)).rejects.toThrow(/size/);
    await expect(system.upgrade({ ...plan, mode: 'phased' as never })).rejects.toThrow(/chunk options are for mode 'rolling'/);
    await expect(system.upgrade({ ...plan, mode: 'gradual' as never })).rejects.toThrow(/mode: must be 'phased' or 'rolling'/);

    const converted = new Promise((resolve) => system!.on('upgrade_converted', resolve));
    const report = await system.upgrade(plan);
    expect(report.ok).toBe(true);
    expect(report.nodes[0]).toMatchObject({ node: 'a', status: 'upgraded', chunks: 5, loaded: [{ module: 'srv', version: 2 }] });
    expect(await converted).toMatchObject({ node: 'a', mode: 'rolling', count: 40, chunks: 5 });
    for (const pid of pids) expect(await system.call(pid, 'conversions')).toBe(1);
  });

  it('an isolate node runs the rolling upgrade inside its isolate, chunk by chunk', async () => {
    system = await System.start({ nodes: [{ name: 'iso', kind: 'isolate', limits: { memoryMb: 64, cpuMsPerSlice: 150 }, modules: { srv: SRV_V1 } }] });
    const iso = system.node('iso');
    const pids: Pid[] = [];
    for (let i = 0; i < 12; i++) pids.push(await iso.startServer('srv', [i]));
    expect(await system.call(pids[3]!, 'hit')).toEqual([1, 1]);
    const converted = new Promise((resolve) => system!.on('upgrade_converted', resolve));
    const report = await system.upgrade({ modules: [{ module: 'srv', source: { code: SRV_V2 } }], mode: 'rolling', rolling: { chunk: 5, chunkMs: 1_000 } });
    expect(report.nodes[0]).toMatchObject({ node: 'iso', status: 'upgraded', chunks: 3, lingering: { srv: [] } });
    expect(await converted).toMatchObject({ node: 'iso', mode: 'rolling', count: 12, pids: [`${pids[0]}..${pids[11]}`], chunks: 3 });
    expect(await system.call(pids[3]!, 'hit')).toEqual([2, 2]);
    expect(await system.call(pids[11]!, 'conversions')).toBe(1);
  });
});
