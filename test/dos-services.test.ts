/**
 * Issue #11: denial of service through the host's services. An isolate node floods the host with
 * host-function calls, remote spawns and global names while a bystander node answers calls. The
 * host's event loop and the bystander's latency must stay bounded, and the attacker is the one cut
 * (its calls refused). No fixed sleeps: the bystander is called back to back until the flood is over.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { System, type Inbox, type Pid } from '../src/index.js';
import { agent, denials, record } from './helpers/sandbox-tools.js';

let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

/** Bounds that hold with the other core busy; a host that runs the whole flood stalls for seconds. */
const MAX_LAG_MS = 500;

const flood = `
  import { receive, on, after, send, self, spawn, next, registerGlobal } from 'subnode';
  import * as me from './flood';
  export function gate(fn: string, ...args: unknown[]) { return receive(on('go', () => (me as any)[fn](...args))); }
  /** Raw service requests, as a flooding module (or a subverted kernel) would send them; counts the answers (2 s without one: the rest were dropped). */
  export function service(reply: string, request: Record<string, unknown>, count: number) {
    const me = self();
    let i = 0;
    // In steps of 1,000 requests: a step far longer would be cut by the CPU limit on a busy machine.
    const batch = (): unknown => {
      for (let j = 0; j < 1000 && i < count; j++, i++) send('<host.0>', { ...request, ref: 'f' + i, from: me });
      return i < count ? next(batch) : tally(reply, count, 0, 0);
    };
    return batch();
  }
  function tally(reply: string, left: number, ok: number, refused: number): unknown {
    if (left === 0) { send(reply, { ok, refused }); return 'done'; }
    return receive(
      on((m: any) => m && m.$serviceReply !== undefined, (m: any) => tally(reply, left - 1, ok + (m.error ? 0 : 1), refused + (m.error && m.error.code === 'refused' ? 1 : 0))),
      after(2_000, () => { send(reply, { ok, refused, dropped: left }); return 'timeout'; }));
  }
  export function names(reply: string, count: number) {
    const me = self();
    let i = 0;
    const batch = (): unknown => {
      for (let j = 0; j < 1000 && i < count; j++, i++) {
        const name = 'n' + i;
        spawn(() => { let ok = true; try { registerGlobal(name); } catch { ok = false; } send(me, ok); return receive(() => 0); });
      }
      return i < count ? next(batch) : tallyNames(reply, count, 0, 0);
    };
    return batch();
  }
  function tallyNames(reply: string, left: number, ok: number, refused: number): unknown {
    if (left === 0) { send(reply, { ok, refused }); return 'done'; }
    return receive((m: boolean) => tallyNames(reply, left - 1, ok + (m ? 1 : 0), refused + (m ? 0 : 1)));
  }
`;
const echo = `
  export function init() { return 0; }
  export function handleCall(request: unknown, _from: unknown, state: number) { return { reply: request, state }; }
`;

/** A host function that costs the host's thread about 0.2 ms. */
function work(): number {
  const until = performance.now() + 0.2;
  let n = 0;
  while (performance.now() < until) n++;
  return n;
}

async function start(): Promise<{ system: System; bystander: Pid }> {
  system = await System.start({
    hostFunctions: { work },
    nodes: [
      {
        name: 'attacker',
        kind: 'isolate',
        capabilities: { sendTo: [], services: { console: false, clock: false, random: false, functions: ['work'] }, spawnRemote: ['victim'], globalNames: '*' },
        limits: { memoryMb: 128, cpuMsPerSlice: 500 },
        modules: { flood },
      },
      { name: 'victim', modules: { agent } },
      { name: 'bystander', modules: { echo } },
    ],
  });
  return { system, bystander: await system.node('bystander').startServer('echo') };
}

interface Tally {
  ok: number;
  refused: number;
  dropped?: number;
}

/** The measured bounds, for the record (SUBNODE_DOS_REPORT=1). */
function report(what: string, result: Tally, worstCallMs: number, lagMs: number): void {
  if (process.env.SUBNODE_DOS_REPORT)
    console.log(`dos ${what}: ${JSON.stringify(result)}, bystander worst call ${worstCallMs.toFixed(0)} ms, host lag ${lagMs.toFixed(0)} ms`);
}

/** Starts `flood.fn(...args)` on the attacker; resolves with its tally, rejects if it dies first (with its reason, to say why). */
async function attack(system: System, inbox: Inbox, fn: string, args: unknown[]): Promise<Tally> {
  const pid = await system.node('attacker').spawn('flood', 'gate', [fn, ...args]);
  const ref = inbox.monitor(pid);
  system.send(pid, 'go');
  const got = await inbox.receive<Tally | { type: 'DOWN'; reason: unknown }>((m: any) => (m && 'ok' in m) || (m?.type === 'DOWN' && m.ref === ref), 25_000);
  if ('type' in got) throw new Error(`the attacker died first: ${JSON.stringify(got.reason)}`);
  return got;
}

/** Runs the flood while calling the bystander back to back; the worst call latency and event-loop lag. */
async function underFlood<T>(system: System, bystander: Pid, attack: Promise<T>): Promise<{ result: T; worstCallMs: number; lagMs: number; calls: number }> {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let done = false;
  let worstCallMs = 0;
  let calls = 0;
  const result = attack.finally(() => {
    done = true;
  });
  while (!done) {
    const t0 = performance.now();
    expect(await system.call(bystander, calls, 5_000)).toBe(calls);
    worstCallMs = Math.max(worstCallMs, performance.now() - t0);
    calls++;
  }
  delay.disable();
  return { result: await result, worstCallMs, lagMs: delay.max / 1e6, calls };
}

describe('host-service floods from an isolate node', () => {
  it('20,000 host function calls: the first refused (Refused), the flood then cut; the host and a bystander stay responsive', async () => {
    const { system, bystander } = await start();
    const events = record(system);
    const inbox = system.inbox();
    const { result, worstCallMs, lagMs } = await underFlood(
      system,
      bystander,
      attack(system, inbox, 'service', [inbox.pid, { $service: 'host', name: 'work', args: [] }, 20_000]),
    );
    report('host calls', result, worstCallMs, lagMs);
    expect(result.ok + result.refused + (result.dropped ?? 0)).toBe(20_000);
    expect(result.ok).toBeLessThan(200); // 16 at once, 200 a second
    expect(result.refused).toBeGreaterThanOrEqual(1_000);
    expect(result.dropped).toBeGreaterThan(10_000);
    expect(worstCallMs).toBeLessThan(MAX_LAG_MS);
    expect(lagMs).toBeLessThan(MAX_LAG_MS);
    const said = denials(events, 'attacker');
    expect(said.some((what) => what.startsWith('host calls refused'))).toBe(true);
    expect(said.some((what) => what.startsWith('host calls dropped for 1 s: a flood'))).toBe(true);
    expect(said.length).toBeLessThan(10); // at most one a second, and one for the flood
  });

  it('5,000 remote spawns: bounded the same way; the victim node gets only the few admitted', async () => {
    const { system, bystander } = await start();
    const inbox = system.inbox();
    const { result, worstCallMs, lagMs } = await underFlood(
      system,
      bystander,
      attack(system, inbox, 'service', [inbox.pid, { $service: 'spawn', node: 'victim', module: 'agent', fn: 'start', args: [] }, 5_000]),
    );
    report('remote spawns', result, worstCallMs, lagMs);
    expect(result.ok + result.refused + (result.dropped ?? 0)).toBe(5_000);
    expect(result.ok).toBeLessThan(200);
    expect(result.refused).toBeGreaterThanOrEqual(1_000);
    expect((await system.node('victim').processes()).length).toBe(result.ok);
    expect(worstCallMs).toBeLessThan(MAX_LAG_MS);
    expect(lagMs).toBeLessThan(MAX_LAG_MS);
  });

  it('20,000 global names: the node holds at most its limit (100), the rest are refused in its kernel', async () => {
    const { system, bystander } = await start();
    const inbox = system.inbox();
    const { result, worstCallMs, lagMs } = await underFlood(system, bystander, attack(system, inbox, 'names', [inbox.pid, 20_000]));
    report('global names', result, worstCallMs, lagMs);
    expect(result).toEqual({ ok: 100, refused: 19_900 });
    expect(Array.from({ length: 20_000 }, (_, i) => system.whereis(`n${i}`)).filter(Boolean).length).toBeLessThanOrEqual(100);
    expect(worstCallMs).toBeLessThan(MAX_LAG_MS);
    expect(lagMs).toBeLessThan(MAX_LAG_MS);
  });
});
