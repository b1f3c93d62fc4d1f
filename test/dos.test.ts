/**
 * Denial of service through the boundary: big messages, copy amplification, event and log floods
 * from an isolate node. While the attack runs, a bystander on another node answers calls: the host's
 * event-loop lag and the bystander's call latency stay bounded, the host's memory grows by far less
 * than the attack would have copied, and it is the attacker's batches that are dropped (or its node
 * that is restarted), never the host.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { System, type Inbox, type Pid, type SystemEvent } from '../src/index.js';
import { agent, answers, denials, eventsOf, record, waitEvent } from './helpers/sandbox-tools.js';

const flood = `
  import { receive, on, send, next } from 'subnode';
  /** The same 500 KB string, sent \`count\` times: one string inside, \`count\` copies outside. */
  export function amplify(to: string, count: number) {
    const s = 'a'.repeat(500_000);
    return receive(on('go', () => { for (let i = 0; i < count; i++) send(to, s); return 'sent'; }));
  }
  /** Big messages, one slice after another. */
  export function big(to: string, rounds: number) {
    const s = 'b'.repeat(4 * 1024 * 1024);
    const round = (n: number): unknown => { for (let i = 0; i < 4; i++) send(to, { s, i }); return n > 1 ? next(round, n - 1) : 'done'; };
    return receive(on('go', () => round(rounds)));
  }
  /** Log lines as fast as it can, for \`ms\` milliseconds of slices. */
  export function logs(rounds: number) {
    const round = (n: number): unknown => { for (let i = 0; i < 2_000; i++) console.log('flood ' + i + ' ' + 'x'.repeat(100)); return n > 1 ? next(round, n - 1) : 'done'; };
    return receive(on('go', () => round(rounds)));
  }
`;

let system: System;
let inbox: Inbox;
let events: SystemEvent[];
let bystander: Pid;

beforeEach(async () => {
  system = await System.start({
    nodes: [
      { name: 'evil', kind: 'isolate', modules: { flood }, limits: { memoryMb: 128, cpuMsPerSlice: 500 } },
      { name: 't', modules: { agent } },
    ],
  });
  inbox = system.inbox();
  events = record(system);
  bystander = await system.node('t').spawn('agent', 'start', []);
});

afterEach(async () => {
  await system.stop();
});

/** Runs `attack` while timing the bystander's answers and the host's event loop. */
async function underAttack(attack: () => Promise<void>): Promise<{ worstCallMs: number; lagMs: number; heapGrowthMb: number }> {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  global.gc?.();
  const before = process.memoryUsage();
  delay.enable();
  let worst = 0;
  let done = false;
  let peak = 0;
  const attacking = attack().finally(() => {
    done = true;
  });
  const probing = (async () => {
    for (let i = 0; i < 8 || !done; i++) {
      const t0 = performance.now();
      expect(await answers(system, inbox, bystander, 5_000)).toBe(true);
      worst = Math.max(worst, performance.now() - t0);
      const m = process.memoryUsage();
      peak = Math.max(peak, m.heapUsed + m.external + m.arrayBuffers - before.heapUsed - before.external - before.arrayBuffers);
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  await Promise.all([attacking, probing]);
  delay.disable();
  const figures = { worstCallMs: worst, lagMs: delay.max / 1e6, heapGrowthMb: peak / 2 ** 20 };
  if (process.env.DOS_FIGURES) console.log(JSON.stringify(figures));
  return figures;
}

/** The attacker cut: a batch over the budget dropped, or its node restarted. */
const cut = (e: SystemEvent): boolean =>
  'node' in e && e.node === 'evil' && ((e.type === 'capability_denied' && /budget/.test(e.what)) || e.type === 'node_restarted');

describe('denial of service through the boundary', () => {
  it('amplification: the same 500 KB string sent 1,000 times (500 MB outside) is cut at the batch or slice budget', async () => {
    let received = 0;
    const sinkInbox = system.inbox();
    const pid = await system.node('evil').spawn('flood', 'amplify', [sinkInbox.pid, 1_000]);
    const figures = await underAttack(async () => {
      const stopped = waitEvent(system, cut, 20_000);
      system.send(pid, 'go');
      await stopped;
      try {
        for (;;) {
          await sinkInbox.receive(undefined, 500);
          received++;
        }
      } catch {
        /* quiet: done */
      }
    });
    expect(figures.worstCallMs).toBeLessThan(1_000);
    expect(figures.lagMs).toBeLessThan(1_000);
    expect(received).toBeLessThan(1_000);
    expect(figures.heapGrowthMb).toBeLessThan(200);
    const restarted = eventsOf(events, 'node_restarted', 'evil').length > 0;
    expect(restarted || denials(events, 'evil').some((d) => /budget/.test(d))).toBe(true);
  });

  it('big messages: 4 MiB messages, 4 a round for 20 rounds, are cut at the budget; the host stays responsive', async () => {
    const sinkInbox = system.inbox();
    let received = 0;
    const pid = await system.node('evil').spawn('flood', 'big', [sinkInbox.pid, 20]);
    const figures = await underAttack(async () => {
      const stopped = waitEvent(system, cut, 20_000);
      system.send(pid, 'go');
      await stopped;
      try {
        for (;;) {
          await sinkInbox.receive(undefined, 500);
          received++;
        }
      } catch {
        /* quiet: done */
      }
    });
    expect(figures.worstCallMs).toBeLessThan(1_000);
    expect(figures.lagMs).toBeLessThan(1_000);
    expect(figures.heapGrowthMb).toBeLessThan(200);
    expect(received).toBeLessThan(80);
  });

  it('log flood: 40,000 log lines are reported at most 1,000 a second, with a summary of the rest', async () => {
    const pid = await system.node('evil').spawn('flood', 'logs', [20]);
    const figures = await underAttack(async () => {
      const summary = waitEvent(system, (e) => e.type === 'log' && e.node === 'evil' && /event\(s\) dropped/.test(e.text), 10_000);
      system.send(pid, 'go');
      await summary;
    });
    expect(figures.worstCallMs).toBeLessThan(1_000);
    expect(figures.lagMs).toBeLessThan(1_000);
    const logs = eventsOf(events, 'log', 'evil');
    const lines = logs.filter((e) => e.text.startsWith('flood ')).length;
    expect(lines).toBeLessThan(40_000);
    await expect.poll(() => eventsOf(events, 'log', 'evil').some((e) => /event\(s\) dropped/.test(e.text)), { timeout: 3_000 }).toBe(true);
  });
});
