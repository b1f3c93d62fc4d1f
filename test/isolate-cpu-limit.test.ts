/**
 * The CPU limit of isolate nodes (`cpuMsPerSlice`): a runaway step is cut within its wall bound
 * (4 × the limit) and only its process dies; a control operation over it fails with Timeout; and a
 * legitimate slice is not cut when the machine is loaded — wall time stretches, CPU time does not
 * (the stress run once lost a test to a slice cut by wall time).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import ivm from 'isolated-vm';
import { afterEach, describe, expect, it } from 'vitest';
import { System, Timeout } from '../src/index.js';
import { agent, answers, eventsOf, record, sleep, waitEvent } from './helpers/sandbox-tools.js';

const SMALL = { memoryMb: 48, cpuMsPerSlice: 150 };

let system: System | undefined;
const hogs: ChildProcess[] = [];
afterEach(async () => {
  for (const hog of hogs.splice(0)) hog.kill('SIGKILL');
  await system?.stop();
  system = undefined;
});

const bomb = `
  import { receive, on, send, self, next } from 'subnode';
  import * as me from './bomb';
  /** Runs fn once 'go' arrives: the attack starts in a slice of its own, not inside the host's spawn call. */
  export function gate(fn: string, ...args: unknown[]) { return receive(on('go', () => (me as any)[fn](...args))); }
  export function spin(to?: string) { if (to) send(to, { spinning: self() }); for (;;) {} }
  export function busySteps(n: number): unknown { let x = 0; for (let i = 0; i < 1e5; i++) x += i; return n > 0 ? next(busySteps, n - 1) : x; }
`;

/** One heavy step per request: `n` rounds of arithmetic, then the answer. */
const worker = `
  import { receive, send } from 'subnode';
  export function work(x: number, n: number) { for (let i = 0; i < n; i++) x = (x * 1103515245 + 12345) % 2147483647; return x; }
  export function serve(): unknown { return receive((m: any) => { send(m.reply, { done: work(1, m.n) }); return serve(); }); }
`;

/** Rounds of `work` per ms of CPU, measured in an isolate of our own by its CPU time. */
function roundsPerCpuMs(): number {
  const isolate = new ivm.Isolate({ memoryLimit: 32 });
  try {
    const context = isolate.createContextSync();
    const run = context.evalSync(`(function work(x, n) { for (let i = 0; i < n; i++) x = (x * 1103515245 + 12345) % 2147483647; return x; })`, {
      reference: true,
    });
    run.applySync(undefined, [1, 1e6]);
    const n = 2e7;
    const before = isolate.cpuTime;
    run.applySync(undefined, [1, n]);
    return n / (Number(isolate.cpuTime - before) / 1e6);
  } finally {
    isolate.dispose();
  }
}

describe.each([false, true])('CPU limit (dense: %s)', (dense) => {
  it('stops a process in an endless loop within the bound; its node and the others go on', async () => {
    const CPU = 150;
    system = await System.start({
      nodes: [
        { name: 'iso', kind: 'isolate', dense, limits: { memoryMb: 48, cpuMsPerSlice: CPU }, modules: { agent, bomb } },
        { name: 'iso2', kind: 'isolate', dense, limits: SMALL, modules: { agent } },
        { name: 't', modules: { agent } },
      ],
    });
    const events = record(system);
    const inbox = system.inbox();
    const sibling = await system.node('iso').spawn('agent', 'start', []);
    const other = await system.node('iso2').spawn('agent', 'start', []);
    const onT = await system.node('t').spawn('agent', 'start', []);
    const exited = waitEvent(system, (e) => e.type === 'process_exit' && e.node === 'iso', 5_000, 'process_exit');
    const cut = waitEvent(system, (e) => e.type === 'cpu_limit' && e.node === 'iso', 5_000, 'cpu_limit');
    const t0 = performance.now();
    const spinner = await system.node('iso').spawn('bomb', 'gate', ['spin', inbox.pid]);
    system.send(spinner, 'go');
    expect(await inbox.receive({ spinning: spinner })).toBeTruthy();
    // While it spins, the other nodes answer (on their own threads, or between the cut slices of a shared one).
    expect(await answers(system, inbox, onT)).toBe(true);
    expect(await answers(system, inbox, other)).toBe(true);
    const exit = await exited;
    const took = performance.now() - t0;
    expect(exit).toMatchObject({ pid: spinner, initial: 'bomb.gate', reason: { cpu_limit: CPU } });
    // Cut at the wall bound (4 × the CPU limit), loaded machine or not; the event says what CPU it had used.
    expect(took).toBeLessThan(CPU * 4 + 1_000);
    expect(await cut).toEqual({ type: 'cpu_limit', node: 'iso', pid: spinner, limitMs: CPU, cpuMs: expect.any(Number) });
    // The other process of the same node still answers; the node was not restarted.
    expect(await answers(system, inbox, sibling)).toBe(true);
    expect(system.node('iso').summary()).toMatchObject({ status: 'running', creation: 0 });
    expect(await system.node('iso').processInfo(spinner)).toBeUndefined();
    // A process that loops in many short steps (next) is preempted by the scheduler, not cut:
    // its siblings answer while it runs.
    const busy = await system.node('iso').spawn('bomb', 'gate', ['busySteps', 1e6]);
    system.send(busy, 'go');
    await sleep(50);
    for (let i = 0; i < 3; i++) expect(await answers(system, inbox, sibling, 1_000)).toBe(true);
    expect((await system.node('iso').processInfo(busy))?.status).toMatch(/runnable|running/);
    await system.node('iso').exit(busy, 'kill');
    expect(eventsOf(events, 'node_down')).toEqual([]);
    expect(eventsOf(events, 'cpu_limit')).toHaveLength(1);
  });

  it('fails a control operation over the CPU limit with Timeout; the node keeps working', async () => {
    system = await System.start({ nodes: [{ name: 'iso', kind: 'isolate', dense, limits: { memoryMb: 48, cpuMsPerSlice: 120 }, modules: { agent } }] });
    const events = record(system);
    const inbox = system.inbox();
    const iso = system.node('iso');
    const pid = await iso.spawn('agent', 'start', []);
    const t0 = performance.now();
    const error = await iso.load('forever', 'export const x = 1;\nfor (;;) {}').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Timeout);
    expect((error as Error).message).toMatch(/CPU limit of 120 ms/);
    expect(performance.now() - t0).toBeLessThan(2_000);
    await sleep(50);
    expect(eventsOf(events, 'cpu_limit', 'iso')).toHaveLength(1);
    // nothing of it was installed; the rest works
    expect((await iso.modules()).filter((m) => m.versions.length).map((m) => m.name)).toEqual(['agent']);
    expect(await answers(system, inbox, pid)).toBe(true);
    expect(await iso.load('fine', 'export const x = 1;')).toMatchObject({ module: 'fine', version: 1 });
    // a server whose init loops forever: refused with Timeout, no process left
    await iso.load('slowInit', 'export function init() { for (;;) {} }\nexport function handleCall() { return { reply: 1, state: 0 }; }');
    await expect(iso.startServer('slowInit')).rejects.toBeInstanceOf(Timeout);
    expect((await iso.processes()).map((p) => p.pid)).toEqual([pid]);
    expect(await answers(system, inbox, pid)).toBe(true);
    expect(system.node('iso').summary().creation).toBe(0);
  });
});

describe('CPU limit on a loaded machine', () => {
  it('a step using two thirds of the CPU limit is not cut while every core is busy with other work', async () => {
    const CPU = 150;
    const rounds = Math.round(roundsPerCpuMs() * CPU * (2 / 3));
    system = await System.start({ nodes: [{ name: 'iso', kind: 'isolate', limits: { memoryMb: 48, cpuMsPerSlice: CPU }, modules: { worker } }] });
    const events = record(system);
    const inbox = system.inbox();
    const pid = await system.node('iso').spawn('worker', 'serve', []);
    // One CPU hog per core: the node's thread gets a share of a core, so each step's wall time stretches.
    for (let i = 0; i < cpus().length; i++) hogs.push(spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
    await Promise.all(hogs.map((hog) => new Promise((started) => hog.once('spawn', started))));
    const N = 4;
    for (let i = 0; i < N; i++) {
      system.send(pid, { n: rounds, reply: inbox.pid });
      expect(await inbox.receive((m: unknown) => typeof m === 'object' && m !== null && 'done' in m, 10_000)).toMatchObject({ done: expect.any(Number) });
    }
    expect(eventsOf(events, 'cpu_limit')).toEqual([]);
    expect(await system.node('iso').processInfo(pid)).toMatchObject({ pid });
  });
});
