/**
 * Work the host asks of a node that must wait for its processes: a call to a supervisor, and an
 * orderly stop of everything running. Each is done by a short-lived kernel process (so it waits
 * in receives like any process) and answered by a promise the control operation returns.
 */
import { BadArgument, NoProcess, Timeout } from '../errors.js';
import { After, Clause, Receive } from './directives.js';
import { formatPid, isPid, type Pid } from './pid.js';
import { RefTable } from './ref-table.js';
import type { Process } from './proc.js';
import type { ProcessTable } from './process-table.js';
import type { Scheduler } from './scheduler.js';
import type { Signalling } from './signalling.js';
import { Sig } from './signals.js';
import { whichChildren, type SupRequest, type SupState } from './supervisor-state.js';
import { safeString } from './values.js';

/** What an orderly stop did: how many processes ended in time, and those killed at the deadline. */
export interface StopReport {
  stopped: number;
  killed: Pid[];
}

const HOST = formatPid('host', 0, 0);
type Msg = { type?: string; ref?: string; reason?: unknown; $reply?: string; value?: unknown };
const isDown = (m: unknown, ref: string): boolean => (m as Msg)?.type === 'DOWN' && (m as Msg).ref === ref;

export class NodeTasks {
  private refs = 0;

  constructor(
    private readonly node: string,
    private readonly table: ProcessTable,
    private readonly scheduler: Scheduler,
    private readonly signals: Signalling,
    private readonly now: () => number,
  ) {}

  /** A call to a supervisor from outside any process (the host's `whichChildren`, `startChild`…). */
  supervisorCall(sup: Pid, request: SupRequest, timeoutMs = Infinity): Promise<unknown> {
    const target = this.table.get(sup);
    if (!target) throw new NoProcess(`no process ${sup} on node '${this.node}'`, { pid: sup });
    if (target.behaviour?.kind !== 'supervisor') throw new BadArgument(`${sup} is not a supervisor`, { pid: sup });
    return new Promise((resolve, reject) => {
      this.run('supervisor_call', (proc) => {
        const ref = this.ref();
        const mref = this.monitor(proc, sup);
        this.signals.send(sup, { $call: request, from: { pid: proc.pid, ref } });
        const reply = new Clause(
          (m: unknown) => (m as Msg)?.$reply === ref,
          (m) => {
            resolve((m as Msg).value);
            return 'done';
          },
        );
        const down = new Clause(
          (m: unknown) => isDown(m, mref),
          (m) => {
            reject(new NoProcess(`supervisor ${sup} ended before it answered: ${safeString((m as Msg).reason)}`, { pid: sup, reason: (m as Msg).reason }));
            return 'done';
          },
        );
        const after =
          timeoutMs === Infinity
            ? null
            : new After(timeoutMs, () => {
                reject(new Timeout(`supervisor ${sup} did not answer ${request.$sup} within ${timeoutMs} ms`, { pid: sup }));
                return 'done';
              });
        return new Receive(null, null, [reply, down], after);
      });
    });
  }

  /**
   * Stops the node's processes from the top: each root (a process no supervisor or live parent
   * owns), newest first, gets the exit signal `shutdown` from the host, and all are waited for —
   * a supervisor ends its children in reverse start order with their shutdown timeouts, trapping
   * servers run `terminate`. At the deadline whatever is left is killed.
   */
  orderlyStop(timeoutMs: number): Promise<StopReport> {
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) throw new BadArgument(`orderlyStop: timeoutMs must be a number >= 0, got ${safeString(timeoutMs)}`);
    const deadline = this.now() + timeoutMs;
    const before = this.table.size;
    return new Promise((resolve) => {
      this.run('orderly_stop', (proc) => {
        const finish = (): string => {
          const killed: Pid[] = [];
          for (const p of [...this.table.values()]) {
            if (p === proc) continue;
            killed.push(p.pid);
            this.signals.signal([Sig.Exit, p.pid, HOST, 'kill', 0]);
          }
          resolve({ stopped: before - killed.length, killed });
          return 'done';
        };
        // Every root is told at once, newest first, and they stop side by side: a stuck one delays
        // no other, and the deadline bounds them all. Whatever is still there after a round (a
        // process started meanwhile) is the next round's roots.
        const waiting = new Set<string>();
        const round = (): unknown => {
          const roots = this.roots(proc);
          if (!roots.length) return finish();
          for (const pid of roots) {
            waiting.add(this.monitor(proc, pid));
            this.signals.signal([Sig.Exit, pid, HOST, 'shutdown', 0]);
          }
          return wait();
        };
        const wait = (): unknown => {
          if (!waiting.size) return round();
          const down = new Clause(
            (m: unknown) => (m as Msg)?.type === 'DOWN' && waiting.has((m as Msg).ref!),
            (m) => {
              waiting.delete((m as Msg).ref!);
              return wait();
            },
          );
          return new Receive(null, null, [down], new After(Math.max(0, deadline - this.now()), finish));
        };
        return round();
      });
    });
  }

  /** Processes no supervisor and no live parent owns, newest first (the stopper aside). */
  private roots(stopper: Process): Pid[] {
    const owned = new Set<Pid>([stopper.pid]);
    for (const p of this.table.values()) {
      const b = p.behaviour;
      if (b?.kind === 'supervisor') for (const c of whichChildren(b.state as SupState)) if (isPid(c.pid)) owned.add(c.pid);
      if (b?.parent && this.table.has(b.parent)) owned.add(p.pid);
    }
    return this.table
      .pids()
      .filter((pid) => !owned.has(pid))
      .reverse();
  }

  /** Runs `first` as the first step of a new kernel process. */
  private run(initial: string, first: (proc: Process) => unknown): void {
    const proc = this.table.create(initial);
    this.scheduler.start(proc, () => first(proc), [], null);
    this.scheduler.afterExternalWork();
  }

  private monitor(proc: Process, pid: Pid): string {
    const ref = this.ref();
    (proc.monitors ??= new RefTable()).set(ref, pid);
    this.signals.signal([Sig.Monitor, pid, proc.pid, ref]);
    return ref;
  }

  private ref(): string {
    return `#Ref<${this.node}.task.${++this.refs}>`;
  }
}
