/**
 * Upgrading 10^4 server processes while callers call them at full speed (issue 14), on the kernel
 * on this thread (the scheduler and timers a thread node has). Four caller processes call the
 * servers round robin, one call at a time each, and time every call.
 *
 * 1. A rolling upgrade (src/kernel/rolling.ts: one load, then chunks with the node serving calls
 *    between them): the p99 call latency during it, beside the p99 of the same callers just before
 *    it. Target: at most 2× and no failed call (the BEAM upgrading one process at a time: p99 15 µs
 *    during, 13–21 µs before).
 * 2. The one-plan (phased) upgrade under the same call stream: the window in which the servers are
 *    suspended (suspend all, load, codeChange all, resume all), beside the rolling upgrade's total
 *    time. Target: ≤ 65 ms for 10^4 (the BEAM's suspend-all/change-all/resume-all: 129 ms).
 */
import { transpile } from '../src/compiler/transpile.js';
import { applyUpgrade, type UpgradeStep } from '../src/kernel/upgrade.js';
import { rollingUpgrade } from '../src/kernel/rolling.js';
import type { Pid } from '../src/kernel/pid.js';
import { benchKernel, type BenchKernel } from './local-kernel.js';
import { gc, measure, now, row, type Benchmark, type ResultRow } from './lib.js';

const SERVER = (vsn: number) => `
  export const vsn = ${vsn};
  export function init(id: number) { return ${vsn === 1 ? '{ id, n: 0 }' : '{ id, hits: 0 }'}; }
  export function handleCall(_r: unknown, _f: unknown, s: any) {
    ${vsn === 1 ? 'return { reply: s.n + 1, state: { id: s.id, n: s.n + 1 } };' : 'return { reply: s.hits + 1, state: { id: s.id, hits: s.hits + 1 } };'}
  }
  ${vsn === 2 ? 'export function codeChange(_old: unknown, s: any) { return { id: s.id, hits: s.n }; }' : ''}
`;

/** Callers: each times its calls into `calls` (µs, while `recording`); a timeout or a reply that is not a number is a failure. */
const CALLER = `
  import { server } from 'subnode';
  import * as me from './caller';
  export const stream = { recording: false, calls: [] as number[], failed: 0, stop: false };
  export function start(pids: string[], i: number) { return me.loop(pids, i); }
  export function loop(pids: string[], i: number): unknown {
    if (stream.stop) return 'done';
    const t = performance.now();
    return server.call(pids[i % pids.length], 'hit', (r: unknown) => {
      if (stream.recording) stream.calls.push((performance.now() - t) * 1000);
      if (!Number.isInteger(r)) stream.failed++;
      return me.loop(pids, i + 1);
    }, { timeout: 2000, onTimeout: () => { stream.failed++; return me.loop(pids, i + 1); } });
  }
`;

interface Stream {
  recording: boolean;
  calls: number[];
  failed: number;
  stop: boolean;
}

const CALLERS = 4;

function p99(values: number[]): number {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A kernel with n servers on v1 and the callers running. */
async function setUp(n: number): Promise<{ k: BenchKernel; stream: Stream; steps: UpgradeStep[] }> {
  const k = benchKernel('a');
  k.load('srv', SERVER(1));
  k.load('caller', CALLER);
  const pids: Pid[] = [];
  for (let i = 0; i < n; i++) pids.push(k.kernel.startBehaviour('server', 'srv', [i]));
  const stream = k.kernel.code.current('caller').exports.stream as Stream;
  for (let c = 0; c < CALLERS; c++) k.kernel.spawn('caller', 'start', [pids, Math.floor((c * n) / CALLERS)]);
  await wait(50); // callers warm
  const steps: UpgradeStep[] = [
    { op: 'suspend', modules: ['srv'] },
    { op: 'load', module: 'srv', js: transpile('srv', SERVER(2)).js },
    { op: 'codeChange', module: 'srv' },
    { op: 'resume' },
  ];
  return { k, stream, steps };
}

/** Records the callers' latencies while `work` runs; returns them and how long it took (ms). */
async function record(stream: Stream, work: () => Promise<unknown>): Promise<{ calls: number[]; ms: number }> {
  stream.calls = [];
  stream.recording = true;
  const t = now();
  await work();
  const ms = now() - t;
  stream.recording = false;
  return { calls: stream.calls, ms };
}

export const rollingBench: Benchmark = {
  name: 'rolling',
  description: 'upgrading 10^4 servers under a call stream: rolling (p99 during vs before) and one-plan window',
  async run({ reps, scale, log }) {
    const n = Math.max(100, Math.round(10_000 * Math.min(scale, 1)));
    const during: number[] = [];
    const before: number[] = [];
    const rollingMs: number[] = [];
    const windowMs: number[] = [];
    let failed = 0;
    let calls = 0;
    for (let r = -1; r < reps; r++) {
      // Rolling: p99 before (the same span of time) and during.
      let { k, stream, steps } = await setUp(n);
      const quiet = await record(stream, () => wait(100));
      let report: Awaited<ReturnType<typeof rollingUpgrade>> | undefined;
      const rolled = await record(stream, async () => (report = await rollingUpgrade(k.kernel, steps)));
      stream.stop = true;
      if (!report?.ok || report.upgraded.length !== n) throw new Error(`rolling upgrade of ${n} failed: ${JSON.stringify(report?.error)}`);
      failed += stream.failed;
      calls += rolled.calls.length;
      // Phased, under the same stream: the window is the transaction itself (nothing runs meanwhile).
      ({ k, stream, steps } = await setUp(n));
      const t = now();
      const phased = applyUpgrade(k.kernel, steps);
      const window = now() - t;
      if (phased instanceof Promise || !phased.ok) throw new Error(`one-plan upgrade of ${n} failed`);
      await wait(20);
      stream.stop = true;
      failed += stream.failed;
      if (r >= 0) {
        during.push(p99(rolled.calls));
        before.push(p99(quiet.calls));
        rollingMs.push(rolled.ms);
        windowMs.push(window);
      }
      log(
        `  rep ${r}: rolling ${rolled.ms.toFixed(0)} ms in ${report.chunks} chunks, ${rolled.calls.length} calls, p99 ${p99(rolled.calls).toFixed(1)} µs ` +
          `(quiet: ${quiet.calls.length} calls, p99 ${p99(quiet.calls).toFixed(1)} µs); one-plan window ${window.toFixed(1)} ms`,
      );
      gc();
    }
    const label = n.toLocaleString('en');
    const subject = measure(`call p99 during the rolling upgrade (${calls} calls timed, ${failed} failed)`, during, 'µs');
    const baseline = measure('call p99 of the same callers without an upgrade', before, 'µs');
    const window = measure(`one-plan window (suspend all, load, convert all, resume all), ${label} servers`, windowMs, 'ms');
    const rolling = measure(`rolling upgrade of ${label} servers, start to end`, rollingMs, 'ms');
    return [
      row(`rolling upgrade of ${label} servers under a call stream: call p99 during`, subject, baseline, {
        text: '<= 2x before, 0 failed',
        check: (_v, ratio) => ratio <= 2 && failed === 0,
      }),
      row(`one-plan upgrade window for ${label} servers under a call stream`, window, rolling, {
        text: '<= 65 ms (BEAM 129 ms)',
        check: (value) => value <= 65,
      }),
    ] satisfies ResultRow[];
  },
};
