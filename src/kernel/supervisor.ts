/**
 * The `supervisor` behaviour, as OTP's supervisor.erl: a process that traps exits, starts its
 * children from child specs, and restarts them by strategy (one_for_one, one_for_all,
 * rest_for_one, simple_one_for_one) and restart type, within `intensity` restarts per `period`
 * ms — one more and it ends its children and exits with `shutdown`, so its own supervisor decides.
 *
 * Its loop is kernel code made of steps like any process: ending a child is `exit(child,
 * 'shutdown')` then a receive of the child's DOWN with the spec's timeout (then `kill`), so the
 * supervisor waits exactly as OTP's does, its other messages queued meanwhile.
 */
import { SubnodeError } from '../errors.js';
import type { ModuleVersion } from './code-server.js';
import type { CodeServer } from './code-server.js';
import { After, Clause, Receive } from './directives.js';
import { isPid, nodeOf, type Pid } from './pid.js';
import { RefTable } from './ref-table.js';
import type { Process } from './proc.js';
import type { ProcessTable } from './process-table.js';
import { ExitNow, type Scheduler } from './scheduler.js';
import type { Signalling } from './signalling.js';
import { Sig } from './signals.js';
import { checkFlags, checkSpec, checkSpecs, isNormalExit, SpecError, type Spec } from './supervisor-spec.js';
import type { SpawnOptions } from './types.js';
import { errorReason } from './values.js';
import { countChildren, isSupRequest, reinit, whichChildren, type Child, type Dynamic, type SupRequest, type SupState } from './supervisor-state.js';

export type StartBehaviour = (
  kind: 'server' | 'statem' | 'supervisor',
  module: string,
  args: unknown[],
  options: SpawnOptions,
  parent: Process,
) => Pid | undefined;

type Next = () => unknown;
type Msg = { type?: string; from?: Pid; reason?: unknown; ref?: string; $supRetry?: string };

const HOST_EXIT = /^<host\./;
const isDown = (m: unknown, ref: string): boolean => (m as Msg)?.type === 'DOWN' && (m as Msg).ref === ref;

export class Supervisors {
  private refs = 0;

  constructor(
    private readonly node: string,
    private readonly code: CodeServer,
    private readonly table: ProcessTable,
    private readonly scheduler: Scheduler,
    private readonly signals: Signalling,
    private readonly now: () => number,
    private readonly startBehaviour: StartBehaviour,
  ) {}

  /**
   * Runs as the new supervisor process, with init's result: checks flags and specs, then starts
   * the children in order. A child that fails to start ends the ones before it and the start
   * fails with `{ shutdown: { failed_to_start_child } }`, as OTP's. `'ignore'` is returned as is.
   */
  init(proc: Process, module: string, args: unknown[], result: unknown): SupState | 'ignore' {
    if (result === 'ignore') return 'ignore';
    const flags = checkFlags(result);
    let specs: Spec[];
    try {
      specs = checkSpecs((result as { children?: unknown }).children ?? []);
    } catch (error) {
      throw error instanceof SpecError ? new SpecError({ start_spec: error.reason }) : error;
    }
    if (flags.strategy === 'simple_one_for_one' && specs.length !== 1) throw new SpecError({ bad_start_spec: specs.map((s) => s.id) });
    proc.trapExit = true;
    const st: SupState = { module, args, ...flags, children: [], template: null, dynamic: new Map(), restarts: [] };
    if (flags.strategy === 'simple_one_for_one') {
      st.template = specs[0]!;
      return st;
    }
    for (const spec of specs) {
      const r = this.startChild(proc, spec);
      if ('error' in r) {
        for (const c of st.children.slice().reverse()) if (isPid(c.pid)) this.exit(proc, c.pid, 'shutdown');
        throw new SpecError({ shutdown: { failed_to_start_child: { id: spec.id, reason: r.error } } });
      }
      if (r.ok !== null || spec.restart !== 'temporary') st.children.push({ spec, pid: r.ok });
    }
    return st;
  }

  /** One message in the supervisor's loop; returns its next step (`loop` when idle again). */
  handle(proc: Process, message: unknown, loop: Receive): unknown {
    const b = proc.behaviour!;
    const st = b.state as SupState;
    const m = message as Msg;
    if (m?.type === 'EXIT' && isPid(m.from)) {
      // From its parent (or, for a top-level supervisor, the host): end the children, then itself.
      if (m.from === b.parent || (b.parent === null && HOST_EXIT.test(m.from)))
        return this.terminateAll(proc, st, () => {
          throw new ExitNow(m.reason);
        });
      const child = st.children.find((c) => c.pid === m.from);
      if (child) return this.childExited(proc, st, child, m.reason, loop);
      const dyn = st.dynamic.get(m.from);
      if (dyn) return this.dynamicExited(proc, st, m.from, dyn, m.reason, loop);
      return loop;
    }
    if (typeof m?.$supRetry === 'string') return this.retry(proc, st, m.$supRetry, loop);
    const call = message as { $call?: unknown; from?: { pid: Pid; ref: string } };
    if (call && typeof call === 'object' && isSupRequest(call.$call) && call.from) {
      const from = call.from;
      return this.call(proc, st, call.$call, (value) => {
        this.signals.send(from.pid, { $reply: from.ref, value });
        return loop;
      });
    }
    return loop; // unexpected messages are dropped (OTP logs them)
  }

  // ---- children exiting and restarts ----------------------------------------------------------

  private childExited(proc: Process, st: SupState, child: Child, reason: unknown, loop: Receive): unknown {
    const restart = child.spec.restart;
    if (restart === 'permanent' || (restart === 'transient' && !isNormalExit(reason))) return this.restart(proc, st, child, loop);
    if (restart === 'temporary') st.children.splice(st.children.indexOf(child), 1);
    else child.pid = null;
    return loop;
  }

  private dynamicExited(proc: Process, st: SupState, key: string, dyn: Dynamic, reason: unknown, loop: Receive): unknown {
    const restart = st.template!.restart;
    if (restart === 'permanent' || (restart === 'transient' && !isNormalExit(reason))) return this.restartDynamic(proc, st, key, dyn, loop);
    st.dynamic.delete(key);
    return loop;
  }

  /** Counts a restart; false when that is one too many for the period. */
  private addRestart(st: SupState): boolean {
    const now = this.now();
    const r = st.restarts;
    let expired = 0;
    while (expired < r.length && now - r[expired]! >= st.period) expired++;
    if (expired) r.splice(0, expired);
    r.push(now);
    return st.restarts.length <= st.intensity;
  }

  private restart(proc: Process, st: SupState, child: Child, loop: Receive): unknown {
    if (!this.addRestart(st))
      return this.terminateAll(proc, st, () => {
        throw new ExitNow('shutdown');
      });
    child.pid = null;
    if (st.strategy === 'one_for_all') {
      return this.terminateChildren(proc, st, st.children, () => this.startChildren(proc, st.children.slice(), loop));
    }
    if (st.strategy === 'rest_for_one') {
      const after = st.children.slice(st.children.indexOf(child) + 1);
      return this.terminateChildren(proc, st, after, () => this.startChildren(proc, st.children.slice(st.children.indexOf(child)), loop));
    }
    return this.startChildren(proc, [child], loop);
  }

  /** Starts children in order; one that fails is marked restarting and retried by a message to self. */
  private startChildren(proc: Process, children: Child[], loop: Receive): unknown {
    for (const c of children) {
      const r = this.startChild(proc, c.spec);
      if ('error' in r) {
        c.pid = 'restarting';
        this.signals.send(proc.pid, { $supRetry: c.spec.id });
        return loop;
      }
      c.pid = r.ok;
    }
    return loop;
  }

  private restartDynamic(proc: Process, st: SupState, key: string, dyn: Dynamic, loop: Receive): unknown {
    if (!this.addRestart(st))
      return this.terminateAll(proc, st, () => {
        throw new ExitNow('shutdown');
      });
    st.dynamic.delete(key);
    const r = this.startChild(proc, st.template!, dyn.args ?? []);
    if ('ok' in r) {
      if (r.ok) st.dynamic.set(r.ok, { pid: r.ok, args: dyn.args });
      return loop;
    }
    const again = key.startsWith('restarting:') ? key : `restarting:${key}`;
    st.dynamic.set(again, { pid: 'restarting', args: dyn.args });
    this.signals.send(proc.pid, { $supRetry: again });
    return loop;
  }

  /** OTP's try_again_restart: a child whose restart failed, restarted again (and counted again). */
  private retry(proc: Process, st: SupState, key: string, loop: Receive): unknown {
    if (st.template) {
      const dyn = st.dynamic.get(key);
      return dyn?.pid === 'restarting' ? this.restartDynamic(proc, st, key, dyn, loop) : loop;
    }
    const child = st.children.find((c) => c.spec.id === key);
    return child?.pid === 'restarting' ? this.restart(proc, st, child, loop) : loop;
  }

  // ---- starting and ending children -----------------------------------------------------------

  /** Starts one child linked to the supervisor: `{ ok: pid }` (null: its init said 'ignore') or `{ error }`. */
  private startChild(proc: Process, spec: Spec, extra: unknown[] = []): { ok: Pid | null } | { error: unknown } {
    const { kind, module, fn } = spec.start;
    const args = extra.length ? [...spec.start.args, ...extra] : spec.start.args;
    try {
      if (kind !== 'raw') return { ok: this.startBehaviour(kind, module, args, { ...spec.start.options, link: true }, proc) ?? null };
      const entry = this.code.entry(module, fn);
      const child = this.table.create(`${module}.${fn}`);
      this.scheduler.start(child, entry.fn, args, entry.version);
      this.table.setUp(child, { link: true }, proc);
      return { ok: child.pid };
    } catch (error) {
      const details = error instanceof SubnodeError ? (error.details as { reason?: unknown } | undefined) : undefined;
      return { error: details?.reason ?? errorReason(error) };
    }
  }

  /** Ends children in reverse start order with their shutdowns; temporary ones are forgotten. */
  private terminateChildren(proc: Process, st: SupState, children: Child[], then: Next): unknown {
    const running = children.filter((c) => isPid(c.pid));
    const done = (): unknown => {
      for (const c of running) c.pid = null;
      st.children = st.children.filter((c) => !(running.includes(c) && c.spec.restart === 'temporary'));
      return then();
    };
    const step = (i: number): unknown => (i < 0 ? done() : this.shutdown(proc, running[i]!.pid as Pid, running[i]!.spec.shutdown, () => step(i - 1)));
    return step(running.length - 1);
  }

  private terminateAll(proc: Process, st: SupState, then: Next): unknown {
    return st.template ? this.terminateDynamic(proc, st, then) : this.terminateChildren(proc, st, st.children, then);
  }

  /**
   * OTP's shutdown/2: monitor, unlink (an EXIT already queued means it is gone), `exit(pid,
   * 'shutdown')` and wait for its DOWN up to the timeout, then `kill`; `brutal_kill` kills at once.
   */
  private shutdown(proc: Process, pid: Pid, how: Spec['shutdown'], then: Next): unknown {
    const ref = this.watch(proc, pid);
    const down = [
      new Clause(
        (m: unknown) => isDown(m, ref),
        () => then(),
      ),
    ];
    this.exit(proc, pid, how === 'brutal_kill' ? 'kill' : 'shutdown');
    if (how === 'brutal_kill' || how === 'infinity') return new Receive(null, null, down, null);
    return new Receive(
      null,
      null,
      down,
      new After(how, () => {
        this.exit(proc, pid, 'kill');
        return new Receive(null, null, down, null);
      }),
    );
  }

  /** simple_one_for_one: every child is told at once, then all are awaited under one timer. */
  private terminateDynamic(proc: Process, st: SupState, then: Next): unknown {
    const how = st.template!.shutdown;
    const waiting = new Set<string>();
    for (const d of st.dynamic.values()) if (isPid(d.pid)) waiting.add(this.watch(proc, d.pid));
    const pids = [...st.dynamic.values()].map((d) => d.pid).filter(isPid);
    for (const pid of pids) this.exit(proc, pid, how === 'brutal_kill' ? 'kill' : 'shutdown');
    const deadline = typeof how === 'number' ? this.now() + how : Infinity;
    let killed = false;
    const wait = (): unknown => {
      if (!waiting.size) {
        st.dynamic.clear();
        return then();
      }
      const down = new Clause(
        (m: unknown) => (m as Msg)?.type === 'DOWN' && waiting.has((m as Msg).ref!),
        (m) => {
          waiting.delete((m as Msg).ref!);
          return wait();
        },
      );
      const after =
        killed || deadline === Infinity
          ? null
          : new After(Math.max(0, deadline - this.now()), () => {
              killed = true;
              for (const pid of pids) this.exit(proc, pid, 'kill');
              return wait();
            });
      return new Receive(null, null, [down], after);
    };
    return wait();
  }

  /** Monitors a child and unlinks it (dropping an EXIT of it already queued); returns the monitor ref. */
  private watch(proc: Process, pid: Pid): string {
    const ref = `#Ref<${this.node}.sup.${++this.refs}>`;
    (proc.monitors ??= new RefTable()).set(ref, pid);
    this.signals.signal([Sig.Monitor, pid, proc.pid, ref]);
    if (proc.links?.delete(pid)) this.signals.signal([Sig.Unlink, pid, proc.pid]);
    proc.mailbox.takeFirst((m) => ((m as Msg)?.type === 'EXIT' && (m as Msg).from === pid ? true : undefined));
    return ref;
  }

  private exit(proc: Process, pid: Pid, reason: unknown): void {
    this.signals.signal([Sig.Exit, pid, proc.pid, reason, 0]);
  }

  // ---- the API: calls to the supervisor -------------------------------------------------------

  private call(proc: Process, st: SupState, request: SupRequest, reply: (value: unknown) => unknown): unknown {
    const arg = request.arg;
    const simple = st.template !== null;
    switch (request.$sup) {
      case 'which_children':
        return reply(whichChildren(st));
      case 'count_children':
        return reply(countChildren(st, (pid) => this.table.has(pid)));
      case 'start_child': {
        if (simple) {
          if (!Array.isArray(arg)) return reply({ error: { badarg: arg } });
          const r = this.startChild(proc, st.template!, arg);
          if ('ok' in r && r.ok) st.dynamic.set(r.ok, { pid: r.ok, args: st.template!.restart === 'temporary' ? null : arg });
          return reply(r);
        }
        let spec: Spec;
        try {
          spec = checkSpec(arg);
        } catch (error) {
          if (error instanceof SpecError) return reply({ error: error.reason });
          throw error;
        }
        const existing = st.children.find((c) => c.spec.id === spec.id);
        if (existing) return reply({ error: isPid(existing.pid) ? { already_started: existing.pid } : 'already_present' });
        const r = this.startChild(proc, spec);
        if ('ok' in r && (r.ok !== null || spec.restart !== 'temporary')) st.children.push({ spec, pid: r.ok });
        return reply(r);
      }
      case 'restart_child': {
        if (simple) return reply({ error: 'simple_one_for_one' });
        const child = st.children.find((c) => c.spec.id === arg);
        if (!child) return reply({ error: 'not_found' });
        if (child.pid !== null) return reply({ error: child.pid === 'restarting' ? 'restarting' : 'running' });
        const r = this.startChild(proc, child.spec);
        if ('ok' in r) child.pid = r.ok;
        return reply(r);
      }
      case 'terminate_child': {
        if (simple) {
          if (!isPid(arg)) return reply({ error: 'simple_one_for_one' });
          const dyn = st.dynamic.get(arg) ?? st.dynamic.get(`restarting:${arg}`);
          if (!dyn) return reply(this.table.has(arg) || nodeOf(arg) !== this.node ? { error: 'not_found' } : { ok: true });
          if (dyn.pid === 'restarting') {
            st.dynamic.delete(`restarting:${arg}`);
            return reply({ ok: true });
          }
          return this.shutdown(proc, arg, st.template!.shutdown, () => {
            st.dynamic.delete(arg);
            return reply({ ok: true });
          });
        }
        const child = st.children.find((c) => c.spec.id === arg);
        if (!child) return reply({ error: 'not_found' });
        const forget = (): unknown => {
          if (child.spec.restart === 'temporary') st.children.splice(st.children.indexOf(child), 1);
          else child.pid = null;
          return reply({ ok: true });
        };
        return isPid(child.pid) ? this.shutdown(proc, child.pid, child.spec.shutdown, forget) : forget();
      }
      case 'delete_child': {
        if (simple) return reply({ error: 'simple_one_for_one' });
        const child = st.children.find((c) => c.spec.id === arg);
        if (!child) return reply({ error: 'not_found' });
        if (child.pid !== null) return reply({ error: child.pid === 'restarting' ? 'restarting' : 'running' });
        st.children.splice(st.children.indexOf(child), 1);
        return reply({ ok: true });
      }
    }
    return reply({ error: { unknown_request: request.$sup } });
  }

  // ---- code change ----------------------------------------------------------------------------

  /** OTP's supervisor code_change: the new version's `init(...args)` runs again, and the state takes its result (see reinit). */
  codeChange(proc: Process, version: ModuleVersion): void {
    const st = proc.behaviour!.state as SupState;
    const init = version.exports.init;
    if (typeof init !== 'function') throw new SpecError({ no_init: version.name });
    const result = this.scheduler.asProcess(proc, () => init(...st.args));
    if (result === 'ignore') return;
    reinit(st, result);
  }
}
