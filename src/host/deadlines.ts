/**
 * Deadlines of the host's waits (a `system.call`, a control request to a node) on the kernel's
 * timer heap behind one Node timer that follows the earliest: arming and clearing a Node timer per
 * request (a 5 s or 30 s one that almost never fires) cost ~5 µs a pair. The timer is unref'd: what
 * a wait is for (a node's thread, a cluster's connection) keeps the process alive, and a timer left
 * armed for a deadline that is no longer waited for must not.
 */
import { performance } from 'node:perf_hooks';
import { KernelTimers } from '../kernel/timers.js';

/** The longest delay a Node timer takes (a longer one fires at once): a deadline further off is re-armed when it fires. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export function hostDeadlines(): KernelTimers {
  return new KernelTimers({
    now: () => performance.now(),
    setTimer: (ms, fire) => setTimeout(fire, Math.min(ms, MAX_DELAY_MS)).unref(),
    clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
  });
}
