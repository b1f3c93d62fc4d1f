/**
 * The in-node kernel: processes, mailboxes, signals, names, the scheduler and the code server.
 * It runs unchanged in every kind of node and uses no Node API: timers, compilation, the clock
 * and the wires to other nodes come through the small `KernelHost` interface.
 */
import { BadArgument, NameTaken, NoProcess, NotCloneable, NotInProcess } from '../errors.js';
import { CodeServer, type ModuleFactory, type ModuleVersion } from './code-server.js';
import { Next, Receive, buildAfter, buildClause, buildReceive } from './directives.js';
import { ANY } from './match.js';
import { formatPid, isPid, nodeOf, NODE_NAME, type Pid } from './pid.js';
import { Process } from './process.js';
import { RingQueue } from './queue.js';
import { Sig, type Envelope, type ErrorReason, type Target } from './signals.js';
import { TimerHeap, type TimerEntry } from './timers.js';
import type { ProcessInfo, ModuleInfo, KernelEvent, SpawnOptions, Dest } from './types.js';

export interface KernelHost {
  now(): number;
  /** One timer at a time: the kernel arms it for its earliest receive timeout. */
  setTimer(ms: number, fire: () => void): unknown;
  clearTimer(handle: unknown): void;
  /** Run `task` soon, after pending I/O (a macrotask), so inbound messages interleave with work. */
  schedule(task: () => void): void;
  /** Source text (CommonJS shape) to a module factory; throws on a syntax error. */
  compile(js: string, filename: string): ModuleFactory;
  /** Signals for processes on another node (or the host, node `host`), batched per slice. */
  outbound(node: string, envelopes: Envelope[]): void;
  emit(event: KernelEvent): void;
}

export interface KernelOptions {
  node: string;
  /** Incarnation of the node: 0 first, +1 per restart. Part of every pid. */
  creation?: number;
  /** How long one scheduler slice may run before yielding to I/O. */
  sliceMs?: number;
}

/** Thrown by `exit(reason)` to end the calling process from any depth. */
class ExitNow {
  constructor(readonly reason: unknown) {}
}

const EMPTY: unknown[] = [];

export class Kernel {
  readonly node: string;
  readonly creation: number;
  readonly code: CodeServer;

  private readonly procs = new Map<Pid, Process>();
  private readonly names = new Map<string, Process>();
  private readonly globals = new Map<string, Pid>();
  private readonly runQueue = new RingQueue<Process>();
  private readonly signals = new RingQueue<Envelope>();
  private readonly timers = new TimerHeap();
  private readonly outbox = new Map<string, Envelope[]>();
  private readonly sliceMs: number;
  private nextId = 0;
  private nextRef = 0;
  private current: Process | null = null;
  private draining = false;
  private scheduled = false;
  /** True while a slice runs: it flushes the outbox when it ends. */
  private inSlice = false;
  private timerHandle: unknown = null;
  private timerDeadline = Infinity;

  constructor(private readonly host: KernelHost, options: KernelOptions) {
    if (!NODE_NAME.test(options.node) || options.node === 'host') throw new BadArgument(`bad node name ${JSON.stringify(options.node)}`);
    this.node = options.node;
    this.creation = options.creation ?? 0;
    this.sliceMs = options.sliceMs ?? 4;
    this.code = new CodeServer({ compile: host.compile, apiFor: (v) => this.apiFor(v), now: host.now }, this.node);
  }

  // ---- control operations (the host calls these) ------------------------------------------

  load(name: string, js: string): { module: string; version: number } {
    const { version, previous } = this.code.load(name, js);
    // Old versions nothing runs any more are unreachable: qualified calls enter the current one.
    for (const old of version.module.old) if (old !== previous && old.processes.size === 0) this.code.remove(old);
    this.host.emit({ type: 'module_loaded', node: this.node, module: name, version: version.version });
    return { module: name, version: version.version };
  }

  /** Spawns `module.fn(...args)` in the module's current version. */
  spawn(module: string, fn: string, args: unknown[] = [], options: SpawnOptions = {}): Pid {
    if (!Array.isArray(args)) throw new BadArgument('spawn args must be an array');
    const entry = this.code.entry(module, fn);
    if (options.name !== undefined) this.checkName(options.name);
    const proc = this.newProcess(entry.fn, args, entry.version, `${module}.${fn}`);
    this.applySpawnOptions(proc, options, null);
    this.afterExternalWork();
    return proc.pid;
  }

  /** Signals from other nodes (or the host), in order. */
  deliver(envelopes: Envelope[]): void {
    for (const envelope of envelopes) this.signals.push(envelope);
    this.drain();
    this.afterExternalWork();
  }

  /** `exit(pid, reason)` from outside any process. */
  exit(pid: Pid, reason: unknown): void {
    if (!this.procs.has(pid)) throw new NoProcess(`no process ${pid} on node '${this.node}'`, { pid });
    this.signal([Sig.Exit, pid, formatPid('host', 0, 0), reason, 0]);
    this.afterExternalWork();
  }

  /** A node went away: links and monitors to its processes fire with `noconnection`. */
  nodeDown(node: string): void {
    const prefix = `<${node}.`;
    for (const proc of this.procs.values()) {
      if (proc.links) for (const pid of proc.links) if (pid.startsWith(prefix)) this.signals.push([Sig.Exit, proc.pid, pid, 'noconnection', 1]);
      if (proc.monitors) for (const [ref, pid] of proc.monitors) if (pid.startsWith(prefix)) this.signals.push([Sig.Down, proc.pid, pid, ref, 'noconnection']);
      if (proc.watchers) for (const [ref, pid] of proc.watchers) if (pid.startsWith(prefix)) proc.watchers.delete(ref);
    }
    this.drain();
    this.afterExternalWork();
  }

  /** The host's replica of the system-wide name registry. */
  setGlobal(name: string, pid: Pid | null): void {
    if (pid) this.globals.set(name, pid); else this.globals.delete(name);
    const local = pid === null ? undefined : this.procs.get(pid);
    if (local) local.globalName = name;
  }

  whereis(name: string): Pid | undefined { return this.names.get(name)?.pid; }

  processes(): ProcessInfo[] {
    return Array.from(this.procs.values(), (p) => this.info(p));
  }

  processInfo(pid: Pid): ProcessInfo | undefined {
    const proc = this.procs.get(pid);
    return proc && this.info(proc);
  }

  modules(): ModuleInfo[] {
    const out: ModuleInfo[] = [];
    for (const record of this.code.all()) {
      if (!record.versions.length) continue;
      out.push({
        name: record.name,
        versions: record.versions.map((v) => ({ version: v.version, state: v.state, processes: v.processes.size, loadedAt: v.loadedAt })),
      });
    }
    return out;
  }

  get processCount(): number { return this.procs.size; }

  // ---- the scheduler --------------------------------------------------------------------------

  private enqueue(proc: Process): void {
    proc.status = 'runnable';
    this.runQueue.push(proc);
    if (!this.scheduled) {
      this.scheduled = true;
      this.host.schedule(this.runSlice);
    }
  }

  private readonly runSlice = (): void => {
    this.scheduled = false;
    this.inSlice = true;
    const deadline = this.host.now() + this.sliceMs;
    let steps = 0;
    for (let proc = this.runQueue.shift(); proc; proc = this.runQueue.shift()) {
      if (proc.status === 'runnable') this.step(proc);
      if ((++steps & 255) === 0 && this.host.now() >= deadline) break;
    }
    this.inSlice = false;
    this.flush();
    if (this.runQueue.length && !this.scheduled) {
      this.scheduled = true;
      this.host.schedule(this.runSlice);
    }
  };

  private step(proc: Process): void {
    const fn = proc.stepFn!;
    const args = proc.stepArgs;
    const arg = proc.stepArg;
    proc.stepFn = null;
    proc.stepArgs = null;
    proc.stepArg = undefined;
    proc.status = 'running';
    this.current = proc;
    let result: unknown;
    try {
      result = args === null ? fn(arg) : fn(...args);
    } catch (thrown) {
      this.current = null;
      this.terminate(proc, thrown instanceof ExitNow ? thrown.reason : errorReason(thrown));
      this.drain();
      return;
    }
    this.current = null;
    if (proc.pendingExit) {
      this.terminate(proc, proc.pendingExit.reason);
      this.drain();
      return;
    }
    this.continueWith(proc, result);
  }

  /** Acts on what a step returned. */
  private continueWith(proc: Process, result: unknown): void {
    if (result instanceof Receive) {
      this.moveTo(proc, result.version);
      if (proc.mailbox.length) {
        const found = proc.mailbox.takeFirst((m) => result.select(m));
        if (found) return this.runNext(proc, found.picked, found.value);
      }
      const after = result.after;
      if (after && after.ms === 0) return this.runNext(proc, after.handler as (m: unknown) => unknown, undefined);
      proc.wait = result;
      proc.status = 'waiting';
      if (after && after.ms !== Infinity) proc.timer = this.armTimeout(proc, after.ms);
    } else if (result instanceof Next) {
      this.moveTo(proc, this.code.versionOf(result.fn) ?? result.version);
      proc.stepFn = result.fn;
      proc.stepArgs = result.args;
      this.enqueue(proc);
    } else if (result !== null && typeof (result as { then?: unknown })?.then === 'function') {
      this.terminate(proc, errorReason(new TypeError(
        'a process step returned a Promise: steps are synchronous; return receive(...) or next(fn, ...args) to wait or loop')));
      this.drain();
    } else {
      this.terminate(proc, 'normal');
      this.drain();
    }
  }

  private runNext(proc: Process, fn: (m: unknown) => unknown, message: unknown): void {
    proc.stepFn = fn as (...args: unknown[]) => unknown;
    proc.stepArg = message;
    this.enqueue(proc);
  }

  /** Keeps the per-version process index exact as a process moves between versions. */
  private moveTo(proc: Process, version: ModuleVersion | null): void {
    const from = proc.version;
    if (from === version) return;
    if (from) {
      from.processes.delete(proc);
      if (from.state === 'old' && from.processes.size === 0) this.oldVersionEmptied(from);
    }
    proc.version = version;
    if (version) version.processes.add(proc);
  }

  /** Hook for retention policies: an old version nothing executes any more. */
  private oldVersionEmptied(_version: ModuleVersion): void {}

  // ---- receive timeouts -----------------------------------------------------------------------

  private armTimeout(proc: Process, ms: number): TimerEntry {
    const receive = proc.wait;
    const entry = this.timers.add(this.host.now() + ms, () => {
      if (proc.wait !== receive || proc.status !== 'waiting') return;
      proc.wait = null;
      proc.timer = null;
      this.runNext(proc, receive!.after!.handler as (m: unknown) => unknown, undefined);
    });
    this.rearm();
    return entry;
  }

  private rearm(): void {
    const next = this.timers.peek();
    if (next === this.timerDeadline) return;
    if (this.timerHandle !== null) this.host.clearTimer(this.timerHandle);
    this.timerHandle = null;
    this.timerDeadline = next ?? Infinity;
    if (next === undefined) return;
    this.timerHandle = this.host.setTimer(Math.max(0, next - this.host.now()), this.fireTimers);
  }

  private readonly fireTimers = (): void => {
    this.timerHandle = null;
    this.timerDeadline = Infinity;
    for (const entry of this.timers.due(this.host.now())) entry.fire();
    this.rearm();
  };

  private disarm(proc: Process): void {
    if (proc.timer) {
      proc.timer.cancelled = true;
      proc.timer = null;
    }
  }

  // ---- processes and signals ------------------------------------------------------------------

  private newProcess(fn: (...args: unknown[]) => unknown, args: unknown[], version: ModuleVersion | null, initial: string): Process {
    const proc = new Process(formatPid(this.node, ++this.nextId, this.creation), initial);
    this.procs.set(proc.pid, proc);
    proc.stepFn = fn;
    proc.stepArgs = args.length ? args : EMPTY;
    this.moveTo(proc, version);
    this.enqueue(proc);
    return proc;
  }

  private applySpawnOptions(proc: Process, options: SpawnOptions, parent: Process | null): void {
    if (options.trapExit) proc.trapExit = true;
    if (options.name !== undefined) this.registerName(options.name, proc);
    if (parent && options.link) {
      (parent.links ??= new Set()).add(proc.pid);
      (proc.links ??= new Set()).add(parent.pid);
    }
  }

  /** Ends a process: links get exit signals, watchers get DOWN, names and timers are freed. */
  private terminate(proc: Process, reason: unknown): void {
    if (proc.status === 'exited') return;
    if (proc === this.current) {
      proc.pendingExit ??= { reason };
      return;
    }
    proc.status = 'exited';
    this.procs.delete(proc.pid);
    this.disarm(proc);
    proc.wait = null;
    proc.stepFn = null;
    proc.stepArgs = null;
    proc.mailbox.clear();
    this.moveTo(proc, null);
    if (proc.name !== null) this.names.delete(proc.name);
    if (proc.globalName !== null && this.globals.get(proc.globalName) === proc.pid) {
      this.globals.delete(proc.globalName);
      this.host.emit({ type: 'global_unregister', node: this.node, name: proc.globalName, pid: proc.pid });
    }
    if (proc.links) for (const pid of proc.links) this.signal([Sig.Exit, pid, proc.pid, reason, 1]);
    if (proc.watchers) for (const [ref, watcher] of proc.watchers) this.signal([Sig.Down, watcher, proc.pid, ref, reason]);
    if (proc.monitors) for (const [ref, watched] of proc.monitors) this.signal([Sig.Demonitor, watched, proc.pid, ref]);
    if (!isQuietReason(reason)) this.host.emit({ type: 'process_exit', node: this.node, pid: proc.pid, initial: proc.initial, reason });
  }

  /** Routes a signal: local ones are queued and applied in order, remote ones batched per node. */
  private signal(envelope: Envelope): void {
    const to = envelope[1];
    if (isPid(to)) {
      const node = nodeOf(to);
      if (node !== this.node) return this.post(node, envelope);
    }
    this.signals.push(envelope);
    this.drain();
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let e = this.signals.shift(); e; e = this.signals.shift()) this.apply(e);
    } finally {
      this.draining = false;
    }
  }

  /** Applies one signal to a process of this node. */
  private apply(e: Envelope): void {
    switch (e[0]) {
      case Sig.Message: {
        const proc = this.lookup(e[1]);
        if (proc) this.deliverMessage(proc, e[2]);
        return;
      }
      case Sig.Link: {
        const proc = this.procs.get(e[1]);
        if (proc) (proc.links ??= new Set()).add(e[2]);
        else this.signal([Sig.Exit, e[2], e[1], 'noproc', 1]);
        return;
      }
      case Sig.Unlink:
        this.procs.get(e[1])?.links?.delete(e[2]);
        return;
      case Sig.Exit: {
        const proc = this.procs.get(e[1]);
        if (proc) this.exitSignal(proc, e[2], e[3], e[4] === 1);
        return;
      }
      case Sig.Monitor: {
        const proc = this.lookup(e[1]);
        if (proc) (proc.watchers ??= new Map()).set(e[3], e[2]);
        else this.signal([Sig.Down, e[2], (isPid(e[1]) ? e[1] : e[1]) as Pid, e[3], 'noproc']);
        return;
      }
      case Sig.Demonitor:
        this.lookup(e[1])?.watchers?.delete(e[3]);
        return;
      case Sig.Down: {
        const watcher = this.procs.get(e[1]);
        if (watcher?.monitors?.delete(e[3])) this.deliverMessage(watcher, { type: 'DOWN', ref: e[3], pid: e[2], reason: e[4] });
        return;
      }
    }
  }

  private exitSignal(proc: Process, from: Pid, reason: unknown, linked: boolean): void {
    if (linked) {
      // A link's exit only counts while the link exists; it ends the link either way.
      if (!proc.links?.delete(from)) return;
    }
    if (!linked && reason === 'kill') return this.terminate(proc, 'killed');
    if (proc.trapExit) return this.deliverMessage(proc, { type: 'EXIT', from, reason });
    if (reason === 'normal' && !(from === proc.pid && !linked)) return;
    this.terminate(proc, reason);
  }

  private deliverMessage(proc: Process, message: unknown): void {
    if (proc.status === 'waiting') {
      const handler = proc.wait!.select(message);
      if (handler) {
        proc.wait = null;
        this.disarm(proc);
        return this.runNext(proc, handler, message);
      }
    }
    proc.mailbox.push(message);
  }

  private lookup(target: Target): Process | undefined {
    return isPid(target) ? this.procs.get(target) : this.names.get(target);
  }

  private post(node: string, envelope: Envelope): void {
    let batch = this.outbox.get(node);
    if (!batch) {
      batch = [];
      this.outbox.set(node, batch);
      // Flushed at the end of the running slice, or on the next macrotask if none runs.
      if (!this.inSlice && !this.scheduled) {
        this.scheduled = true;
        this.host.schedule(this.runSlice);
      }
    }
    batch.push(envelope);
  }

  private flush(): void {
    if (!this.outbox.size) return;
    for (const [node, batch] of this.outbox) this.host.outbound(node, batch);
    this.outbox.clear();
  }

  /** After work that did not come through a slice, make sure timers and batches move. */
  private afterExternalWork(): void {
    if (this.outbox.size && !this.scheduled) {
      this.scheduled = true;
      this.host.schedule(this.runSlice);
    }
  }

  private registerName(name: string, proc: Process): void {
    this.checkName(name);
    if (proc.name !== null) throw new BadArgument(`process ${proc.pid} is already registered as '${proc.name}'`);
    proc.name = name;
    this.names.set(name, proc);
  }

  private checkName(name: unknown): void {
    if (typeof name !== 'string' || !name || isPid(name) || name.length > 255) throw new BadArgument(`bad registered name ${JSON.stringify(name)}`);
    if (this.names.has(name)) throw new NameTaken(`the name '${name}' is already registered on node '${this.node}'`, { name });
  }

  private info(p: Process): ProcessInfo {
    return {
      pid: p.pid,
      name: p.name ?? undefined,
      status: p.status,
      mailbox: p.mailbox.length,
      initial: p.initial,
      versions: p.version ? [{ module: p.version.name, version: p.version.version, state: p.version.state }] : [],
      links: p.links ? [...p.links] : [],
      trapExit: p.trapExit,
    };
  }

  // ---- the API module code imports as 'subnode' --------------------------------------------

  private self(what: string): Process {
    if (!this.current) throw new NotInProcess(`${what}() can only be called from inside a process`);
    return this.current;
  }

  /** Sends from module code: by pid, by local name, `{ name, node }` or `{ global }`. */
  send(dest: Dest, message: unknown): void {
    if (isPid(dest)) return this.sendPid(dest, message);
    if (typeof dest === 'string') {
      const proc = this.names.get(dest);
      if (!proc) throw new NoProcess(`no process registered as '${dest}' on node '${this.node}'`, { name: dest });
      return this.deliverLocal(proc, message);
    }
    if (dest && typeof dest === 'object') {
      if ('global' in dest && typeof dest.global === 'string') {
        const pid = this.globals.get(dest.global);
        if (!pid) throw new NoProcess(`no process registered globally as '${dest.global}'`, { global: dest.global });
        return this.sendPid(pid, message);
      }
      if ('name' in dest && typeof dest.name === 'string' && typeof dest.node === 'string') {
        if (dest.node === this.node) return this.send(dest.name, message);
        assertCloneable(message);
        return this.post(dest.node, [Sig.Message, dest.name, message]);
      }
    }
    throw new BadArgument(`cannot send to ${safeString(dest)}: use a pid, a name, { name, node } or { global }`);
  }

  private sendPid(pid: Pid, message: unknown): void {
    const node = nodeOf(pid);
    if (node !== this.node) {
      assertCloneable(message);
      return this.post(node, [Sig.Message, pid, message]);
    }
    const proc = this.procs.get(pid);
    if (proc) this.deliverLocal(proc, message);
  }

  private deliverLocal(proc: Process, message: unknown): void {
    // While signals are queued, a message must queue behind them to keep per-pair order.
    if (this.draining) this.signals.push([Sig.Message, proc.pid, message]);
    else this.deliverMessage(proc, message);
  }

  private apiFor(version: ModuleVersion | null): object {
    const k = this;
    const spawnWith = (options: SpawnOptions, fn: unknown, args: unknown[]): Process => {
      if (typeof fn !== 'function') throw new BadArgument('spawn() takes a function (a module export or a closure) and its arguments');
      const parent = k.current;
      if (options.name !== undefined) k.checkName(options.name);
      const f = fn as (...a: unknown[]) => unknown;
      const proc = k.newProcess(f, args, k.code.versionOf(f) ?? version, f.name || 'anonymous');
      k.applySpawnOptions(proc, options, parent);
      return proc;
    };
    return Object.freeze({
      ANY,
      receive: (...parts: unknown[]) => buildReceive(version, parts),
      on: buildClause,
      after: buildAfter,
      next: (fn: (...args: unknown[]) => unknown, ...args: unknown[]) => {
        if (typeof fn !== 'function') throw new TypeError('next() takes a function and its arguments');
        return new Next(version, fn, args);
      },
      self: () => k.self('self').pid,
      node: () => k.node,
      send: (dest: Dest, message: unknown) => { k.send(dest, message); return message; },
      spawn: (fn: unknown, ...args: unknown[]) => spawnWith({}, fn, args).pid,
      spawnLink: (fn: unknown, ...args: unknown[]) => spawnWith({ link: true }, fn, args).pid,
      spawnMonitor: (fn: unknown, ...args: unknown[]) => {
        k.self('spawnMonitor');
        const pid = spawnWith({}, fn, args).pid;
        return [pid, k.monitor(pid)];
      },
      spawnOpt: (fn: unknown, args: unknown[] = [], options: SpawnOptions = {}) => {
        const proc = spawnWith(options, fn, args);
        return options.monitor ? [proc.pid, k.monitor(proc.pid)] : proc.pid;
      },
      link: (pid: Pid) => k.link(pid),
      unlink: (pid: Pid) => k.unlink(pid),
      monitor: (target: Pid | string) => k.monitor(target),
      demonitor: (ref: string) => k.demonitor(ref),
      exit: (...args: unknown[]) => {
        if (args.length < 2) throw new ExitNow(args[0] ?? 'normal');
        k.exitOther(args[0] as Pid, args[1]);
        return true;
      },
      trapExit: (on: boolean) => {
        const proc = k.self('trapExit');
        const was = proc.trapExit;
        proc.trapExit = Boolean(on);
        return was;
      },
      register: (name: string, pid?: Pid) => {
        const proc = pid === undefined ? k.self('register') : k.procs.get(pid);
        if (!proc) throw new NoProcess(`no process ${pid} on node '${k.node}'`, { pid });
        k.registerName(name, proc);
        return true;
      },
      unregister: (name: string) => {
        const proc = k.names.get(name);
        if (!proc) throw new NoProcess(`no process registered as '${name}'`, { name });
        k.names.delete(name);
        proc.name = null;
        return true;
      },
      whereis: (name: string) => k.names.get(name)?.pid,
      registerGlobal: (name: string) => {
        const proc = k.self('registerGlobal');
        if (typeof name !== 'string' || !name) throw new BadArgument(`bad global name ${JSON.stringify(name)}`);
        if (k.globals.has(name)) throw new NameTaken(`the global name '${name}' is already registered`, { name });
        k.globals.set(name, proc.pid);
        proc.globalName = name;
        k.host.emit({ type: 'global_register', node: k.node, name, pid: proc.pid });
        return true;
      },
      whereisGlobal: (name: string) => k.globals.get(name),
      makeRef: () => k.makeRef(),
      isPid,
    });
  }

  private link(pid: Pid): true {
    const proc = this.self('link');
    if (!isPid(pid)) throw new BadArgument(`link() takes a pid, got ${safeString(pid)}`);
    if (pid === proc.pid || proc.links?.has(pid)) return true;
    (proc.links ??= new Set()).add(pid);
    this.signal([Sig.Link, pid, proc.pid]);
    return true;
  }

  private unlink(pid: Pid): true {
    const proc = this.self('unlink');
    if (proc.links?.delete(pid)) this.signal([Sig.Unlink, pid, proc.pid]);
    return true;
  }

  private monitor(target: Pid | string): string {
    const proc = this.self('monitor');
    const ref = this.makeRef();
    const pid = isPid(target) ? target : this.names.get(target)?.pid;
    (proc.monitors ??= new Map()).set(ref, pid ?? (target as Pid));
    if (!pid) this.signal([Sig.Down, proc.pid, target as Pid, ref, 'noproc']);
    else this.signal([Sig.Monitor, pid, proc.pid, ref]);
    return ref;
  }

  private demonitor(ref: string): true {
    const proc = this.self('demonitor');
    const watched = proc.monitors?.get(ref);
    if (watched !== undefined) {
      proc.monitors!.delete(ref);
      this.signal([Sig.Demonitor, watched, proc.pid, ref]);
    }
    return true;
  }

  private exitOther(pid: Pid, reason: unknown): void {
    if (!isPid(pid)) throw new BadArgument(`exit() takes a pid, got ${safeString(pid)}`);
    const from = this.current?.pid ?? formatPid('host', 0, 0);
    this.signal([Sig.Exit, pid, from, reason, 0]);
  }

  private makeRef(): string {
    return `#Ref<${this.node}.${this.creation}.${++this.nextRef}>`;
  }
}

/** Exits that are part of normal operation and need no crash report. */
function isQuietReason(reason: unknown): boolean {
  return reason === 'normal' || reason === 'shutdown' || reason === 'killed' || reason === 'noconnection' ||
    (typeof reason === 'object' && reason !== null && 'shutdown' in reason);
}

export function errorReason(thrown: unknown): ErrorReason {
  if (thrown instanceof Error) return { error: { name: thrown.name, message: thrown.message, stack: thrown.stack } };
  return { error: { name: 'Error', message: safeString(thrown) } };
}

function safeString(value: unknown): string {
  try {
    return typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * Messages to other nodes are copied by structured clone. Checking here, at `send`, lets the
 * sender get a NotCloneable error instead of a whole batch failing later on the wire.
 */
export function assertCloneable(value: unknown, path = 'message', seen?: Set<object>): void {
  switch (typeof value) {
    case 'function': throw new NotCloneable(`${path} is a function, which cannot be sent to another node`);
    case 'symbol': throw new NotCloneable(`${path} is a symbol, which cannot be sent to another node`);
    case 'object': {
      if (value === null) return;
      if (seen?.has(value)) return;
      (seen ??= new Set()).add(value);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) assertCloneable(value[i], `${path}[${i}]`, seen);
      } else if (value instanceof Map) {
        for (const [k, v] of value) { assertCloneable(k, `${path} key`, seen); assertCloneable(v, `${path}.get(…)`, seen); }
      } else if (value instanceof Set) {
        for (const v of value) assertCloneable(v, `${path} member`, seen);
      } else if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date || value instanceof RegExp || value instanceof Error) {
        return;
      } else if (value instanceof WeakMap || value instanceof WeakSet || value instanceof Promise) {
        throw new NotCloneable(`${path} is a ${value.constructor.name}, which cannot be sent to another node`);
      } else {
        for (const key of Object.keys(value)) assertCloneable((value as Record<string, unknown>)[key], `${path}.${key}`, seen);
      }
      return;
    }
    default: return;
  }
}
