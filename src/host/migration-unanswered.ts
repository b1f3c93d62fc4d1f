/**
 * A move's `migrateIn` that failed as a whole (its request timed out, its answer was lost): the
 * target may have run it anyway, or may run it later, since a node handles its control requests
 * in the order they arrive. The driver must not resume at the source a process that started on
 * the target: two live processes with one pid. So it asks the target, in requests posted after
 * the failed one (answered only after `migrateIn` ran, if it ran), which of the pids arrived.
 *
 * Vocabulary: an *unanswered* move is one whose `migrateIn` failed as a whole; it is *settled*
 * once the target said which of its pids run there, *uncertain* if the target never said (its copies are then withdrawn).
 */
import type { Pid } from '../kernel/pid.js';
import type { MigrationSnapshot } from '../kernel/types.js';
import type { NodeHandle } from './node-handle.js';

/**
 * Which of `snapshots` (taken at node `from`) run on `target` now, having arrived by this move:
 * present, with one move more than the snapshot had and `from` as the node they came from. Asks
 * again (each question bounded by the control request's own deadline) until `withinMs`; undefined
 * if no question was answered by then.
 */
export async function askArrived(target: NodeHandle, snapshots: MigrationSnapshot[], from: string, withinMs: number): Promise<Set<Pid> | undefined> {
  const deadline = Date.now() + withinMs;
  for (let pause = 5; ; pause = Math.min(pause * 2, 200)) {
    try {
      const infos = await Promise.all(snapshots.map((s) => target.processInfo(s.pid)));
      const arrived = new Set<Pid>();
      snapshots.forEach((s, i) => {
        const moved = infos[i]?.migration;
        if (moved && moved.moves === s.moves + 1 && moved.cameFrom === from) arrived.add(s.pid);
      });
      return arrived;
    } catch {
      if (Date.now() + pause >= deadline) return undefined;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

/**
 * The target never said: each copy that may have started there is withdrawn (it leaves without
 * dying: no exit signals, no DOWN, so its links and monitors, which are the resuming process's, see
 * nothing) by requests posted after `migrateIn`, so a `migrateIn` the target runs late is followed
 * by the withdrawal. A pid not there, or not from `from`, is left alone. Each request is bounded by
 * its own deadline.
 */
export async function withdrawCopies(target: NodeHandle, pids: Pid[], from: string): Promise<void> {
  await target.migrateWithdraw(pids, from).catch(() => {});
}
