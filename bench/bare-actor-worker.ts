/**
 * Runs the bare-actor baseline (bench/bare-actor.ts) in a thread of its own, on request, so its
 * figures do not depend on what the other benchmarks left in the main thread's heap: a run that
 * leaves a million-message backlog behind slowed the next bare-actor run on the same thread by
 * up to half, even after gc().
 */
import { parentPort } from 'node:worker_threads';
import { bareActorRun, barePingPong } from './bare-actor.js';

export interface BareActorJob {
  n: number;
  yieldEvery: number;
  mode: 'drain' | 'each' | 'pingpong';
}

const gc = (globalThis as { gc?: () => void }).gc;

parentPort!.on('message', async (job: BareActorJob) => {
  try {
    gc?.();
    parentPort!.postMessage({ ms: job.mode === 'pingpong' ? await barePingPong(job.n) : await bareActorRun(job.n, job.yieldEvery, job.mode) });
  } catch (error) {
    parentPort!.postMessage({ error: String((error as Error).stack ?? error) });
  }
});
