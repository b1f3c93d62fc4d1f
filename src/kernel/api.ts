/**
 * The process API: the object module code imports as 'subnode', one per module version (so every
 * directive it builds says which version's code built it). Its verbs act as the running process:
 * spawn, send, link, monitor, exit, names, refs, and the steps that wait for a reply (calls to
 * behaviours, to the host's service process).
 */
import { fromWire, type WireError } from '../errors.js';
import { BadArgument, NotAllowed, NotInProcess, Refused, Timeout } from '../errors.js';
import type { From } from './behaviours.js';
import { allows, DEFAULT_GLOBAL_NAMES, type Capabilities } from './capabilities.js';
import type { CodeServer, ModuleVersion } from './code-server.js';
import { After, Clause, Next, OnMigrate, Receive, buildAfter, buildClause, buildReceive } from './directives.js';
import { CallWait } from './call-wait.js';
import type { KernelPlatform } from './kernel.js';
import { ANY } from './match.js';
import { formatPid, isPid, nodeOf, type Pid } from './pid.js';
import { RefTable } from './ref-table.js';
import type { Process } from './proc.js';
import type { ProcessTable } from './process-table.js';
import { ExitNow, type Scheduler } from './scheduler.js';
import type { Signalling } from './signalling.js';
import { Sig, type DownMessage } from './signals.js';
import type { SysOps } from './sys.js';
import { supervisorCalls } from './supervisor-api.js';
import type { Dest, SpawnOptions } from './types.js';
import { safeString } from './values.js';
import { copyableReason } from './reasons.js';

/** The host's service process: remote spawns and host function calls are messages to it. */
export const HOST_SERVICE = '<host.0>' as Pid;

/** Taken before any module code runs: a sandbox may withhold or replace Math.random. */
const random = Math.random;

type CallOptions = { timeout?: number; onTimeout?: () => unknown };

/** The options of a plain `spawn`: one object for all of them, not one per spawn. */
const NO_OPTIONS: SpawnOptions = Object.freeze({});

/** The last part of a ref, `0>` … `63>`, made once. */
const REF_LOW = Array.from({ length: 64 }, (_, i) => `${i}>`);

export class ProcessApi {
  /** Refs of the current block so far (0–63), and blocks so far. */
  private nextRef = 0;
  private refBlocks = 0;
  private refBlock = '';
  private readonly refHead: string;

  constructor(
    private readonly node: string,
    creation: number,
    private readonly capabilities: Capabilities,
    private readonly platform: KernelPlatform,
    private readonly code: CodeServer,
    private readonly table: ProcessTable,
    private readonly scheduler: Scheduler,
    private readonly signals: Signalling,
    private readonly sys: SysOps,
    private readonly globalNamesLimit: number = DEFAULT_GLOBAL_NAMES,
  ) {
    this.refHead = `#Ref<${node}.${creation}.`;
  }

  /** The API object for code of `version` (null: code outside any module). */
  apiFor(version: ModuleVersion | null): object {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the API object's functions are plain functions, not methods of this
    const k = this;
    const signals = this.signals;
    const spawnWith = (options: SpawnOptions, fn: unknown, args: unknown[]): Process => {
      if (typeof fn !== 'function') throw new BadArgument('spawn() takes a function (a module export or a closure) and its arguments');
      const parent = k.scheduler.running();
      if (options.name !== undefined) k.table.checkName(options.name);
      const f = fn as (...a: unknown[]) => unknown;
      const target = k.code.versionOf(f) ?? version;
      if (target?.draining) throw new Refused(`cannot spawn into ${target}: it is being drained`, { module: target.name, version: target.version });
      const proc = k.table.create(f.name || 'anonymous');
      k.scheduler.start(proc, f, args, target);
      k.table.setUp(proc, options, parent);
      return proc;
    };
    return Object.freeze({
      ANY,
      // The one-handler form is the hot path: no rest array, no clause objects.
      receive: function receive(first?: unknown) {
        // `arguments`, not a rest parameter: no array is allocated on the one-handler path.
        if (arguments.length === 1 && typeof first === 'function') return new Receive(version, first as (m: unknown) => unknown, null, null);
        // eslint-disable-next-line prefer-rest-params -- see above
        return buildReceive(version, Array.prototype.slice.call(arguments));
      },
      on: buildClause,
      onMigrate: (handler: () => unknown) => {
        if (typeof handler !== 'function') throw new TypeError('onMigrate(): handler must be a function returning next(exportedFn, ...state)');
        return new OnMigrate(handler);
      },
      after: buildAfter,
      next: (fn: (...args: unknown[]) => unknown, ...args: unknown[]) => {
        if (typeof fn !== 'function') throw new TypeError('next() takes a function and its arguments');
        return new Next(version, fn, args);
      },
      self: () => k.self('self').pid,
      node: () => k.node,
      send: (dest: Dest, message: unknown) => {
        signals.send(dest, message);
        return message;
      },
      spawn: (fn: unknown, ...args: unknown[]) => spawnWith(NO_OPTIONS, fn, args).pid,
      spawnLink: (fn: unknown, ...args: unknown[]) => spawnWith({ link: true }, fn, args).pid,
      spawnMonitor: (fn: unknown, ...args: unknown[]) => {
        k.self('spawnMonitor');
        const pid = spawnWith(NO_OPTIONS, fn, args).pid;
        return [pid, k.monitor(pid)];
      },
      spawnOpt: (fn: unknown, args: unknown[] = [], options: SpawnOptions = {}) => {
        const proc = spawnWith(options, fn, args);
        return options.monitor ? [proc.pid, k.monitor(proc.pid)] : proc.pid;
      },
      link: (pid: Pid) => k.link(pid),
      unlink: (pid: Pid) => k.unlink(pid),
      monitor: (target: Pid | string) => k.monitor(target),
      demonitor: (ref: string, options?: { flush?: boolean }) => k.demonitor(ref, options?.flush === true),
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
        const proc = pid === undefined ? k.self('register') : k.table.require(pid);
        k.table.register(name, proc);
        return true;
      },
      unregister: (name: string) => {
        k.table.unregister(name);
        return true;
      },
      whereis: (name: string) => k.table.whereis(name),
      registerGlobal: (name: string) => k.registerGlobal(name),
      whereisGlobal: (name: string) => k.table.global(name),
      makeRef: () => k.makeRef(),
      isPid,
      spawnOn: (node: string, module: string, fn: string, args: unknown[], then: (pid: Pid) => unknown, options?: { timeout?: number }) =>
        k.serviceCall(version, 'spawn', { node, module, fn, args: args ?? [] }, then as (v: unknown) => unknown, options?.timeout),
      callHost: (name: string, args: unknown[], then: (value: unknown) => unknown, options?: { timeout?: number }) =>
        k.serviceCall(version, 'host', { name, args: args ?? [] }, then, options?.timeout),
      server: Object.freeze({
        start: (module: unknown, args: unknown[] = [], options: SpawnOptions = {}) =>
          k.sys.start('server', k.moduleName(module), args, options, k.scheduler.running()),
        call: (dest: Dest, request: unknown, then: (reply: unknown) => unknown, options?: CallOptions) => k.callStep(version, dest, request, then, options),
        cast: (dest: Dest, message: unknown) => {
          signals.send(dest, { $cast: message });
          return true;
        },
        reply: (from: From, value: unknown) => {
          signals.send(from.pid, { $reply: from.ref, value });
          return true;
        },
      }),
      supervisor: Object.freeze({
        start: (module: unknown, args: unknown[] = [], options: SpawnOptions = {}) =>
          k.sys.startOrIgnore('supervisor', k.moduleName(module), args, options, k.scheduler.running()),
        startLink: (module: unknown, args: unknown[] = [], options: SpawnOptions = {}) =>
          k.sys.startOrIgnore('supervisor', k.moduleName(module), args, { ...options, link: true }, k.self('supervisor.startLink')),
        ...supervisorCalls((dest, request, then, options) => k.callStep(version, dest, request, then, { timeout: Infinity, ...options })),
      }),
      statem: Object.freeze({
        start: (module: unknown, args: unknown[] = [], options: SpawnOptions = {}) =>
          k.sys.start('statem', k.moduleName(module), args, options, k.scheduler.running()),
        call: (dest: Dest, request: unknown, then: (reply: unknown) => unknown, options?: CallOptions) => k.callStep(version, dest, request, then, options),
        cast: (dest: Dest, message: unknown) => {
          signals.send(dest, { $cast: message });
          return true;
        },
      }),
    });
  }

  /**
   * A system-wide name for the running process, if the node's capabilities grant the name and
   * its limit has room. The host checks both again before any other node hears of it.
   */
  private registerGlobal(name: string): true {
    const proc = this.self('registerGlobal');
    if (typeof name === 'string' && !allows(this.capabilities.globalNames ?? '*', name)) {
      this.signals.deny(proc.pid, `register the global name '${name}'`);
      throw new NotAllowed(`node '${this.node}' may not register the global name '${name}'`, { name });
    }
    this.table.claimGlobal(name, proc, this.globalNamesLimit);
    this.platform.emit({ type: 'global_register', node: this.node, name, pid: proc.pid });
    return true;
  }

  private self(what: string): Process {
    const proc = this.scheduler.running();
    if (!proc) throw new NotInProcess(`${what}() can only be called from inside a process`);
    return proc;
  }

  /**
   * A request to the host's service process (a spawn on another node, a host function), as a step:
   * the reply continues the process with `then(value)`; a refusal ends it with the error.
   */
  private serviceCall(
    version: ModuleVersion | null,
    service: 'spawn' | 'host',
    request: Record<string, unknown>,
    then: (value: unknown) => unknown,
    timeout = 5_000,
  ): Receive {
    const proc = this.self(service === 'spawn' ? 'spawnOn' : 'callHost');
    if (typeof then !== 'function')
      throw new BadArgument(`${service === 'spawn' ? 'spawnOn' : 'callHost'}: the last argument must be a function of the result`);
    if (service === 'spawn') {
      const node = request.node as string;
      const granted = this.capabilities.spawnRemote;
      if (granted === false || (Array.isArray(granted) && !granted.includes(node))) {
        this.signals.deny(proc.pid, `spawn on node '${node}'`);
        throw new NotAllowed(`node '${this.node}' may not spawn on node '${node}'`, { node });
      }
    } else if (!allows(this.capabilities.services.functions, request.name as string)) {
      this.signals.deny(proc.pid, `host function '${String(request.name)}'`);
      throw new NotAllowed(`node '${this.node}' may not call host function '${String(request.name)}'`, { name: request.name });
    }
    this.signals.checkMessage(request.args);
    const ref = this.makeRef();
    this.scheduler.post('host', [Sig.Message, HOST_SERVICE, { $service: service, ref, from: proc.pid, ...request }]);
    const reply = new Clause(
      (m: unknown) => (m as { $serviceReply?: string })?.$serviceReply === ref,
      (m) => {
        const r = m as { ok?: unknown; error?: WireError };
        if (r.error) throw fromWire(r.error);
        return then(r.ok);
      },
    );
    const after = new After(timeout, () => {
      throw new Timeout(`${service} request timed out after ${timeout} ms`, { service });
    });
    return new Receive(version, null, [reply], after);
  }

  /**
   * A CPS call: sends `{ $call }` and waits for the reply (or the callee's death, or the timeout).
   * As in OTP, the call's tag is the ref of its monitor on the callee; the wait is one object with
   * no clause closures (`CallWait`), and its timer is re-armed on the platform only when needed.
   * A live callee on this node, with no signal queued: the monitor is set and the request
   * delivered directly, with one lookup of the callee.
   */
  private callStep(version: ModuleVersion | null, dest: Dest, request: unknown, then: (reply: unknown) => unknown, options?: CallOptions): Receive {
    const proc = this.self('call');
    if (typeof then !== 'function') throw new BadArgument('call(dest, request, then): then must be a function of the reply');
    const timeout = options?.timeout ?? 5_000;
    const callee = typeof dest === 'string' ? (this.table.get(dest as Pid) ?? this.table.named(dest)) : undefined;
    if (callee !== undefined && this.signals.idle()) {
      const ref = this.makeRef();
      (proc.monitors ??= new RefTable()).set(ref, callee.pid);
      (callee.watchers ??= new RefTable()).set(ref, proc.pid);
      this.signals.sendTo(callee, { $call: request, from: { pid: proc.pid, ref } as From });
      return new CallWait(this, version, dest, request, ref, callee, then, timeout, options?.onTimeout);
    }
    const target = isPid(dest) ? dest : typeof dest === 'string' ? this.table.named(dest)?.pid : undefined;
    const ref = target ? this.monitor(target) : this.makeRef();
    this.signals.send(dest, { $call: request, from: { pid: proc.pid, ref } as From });
    return new CallWait(this, version, dest, request, ref, target !== undefined, then, timeout, options?.onTimeout);
  }

  /**
   * @internal a call is settled (reply or timeout): its monitor goes, with a DOWN already queued
   * for it. A callee that is still here has sent no DOWN: its entry goes directly.
   */
  endCall(wait: CallWait): void {
    const callee = wait.callee;
    if (callee === false) return;
    if (callee !== true && callee.status !== 'exited' && this.signals.idle()) {
      this.scheduler.running()!.monitors!.delete(wait.ref);
      callee.watchers!.delete(wait.ref);
      return;
    }
    this.demonitor(wait.ref, true);
  }

  /** A callback module given by name or by its namespace object. */
  private moduleName(module: unknown): string {
    if (typeof module === 'string') return module;
    const name = module && typeof module === 'object' ? this.code.nameOfNamespace(module) : undefined;
    if (!name) throw new BadArgument('a behaviour takes its callback module by name or as an imported namespace');
    return name;
  }

  private link(pid: Pid): true {
    const proc = this.self('link');
    if (!isPid(pid)) throw new BadArgument(`link() takes a pid, got ${safeString(pid)}`);
    if (pid === proc.pid || proc.links?.has(pid)) return true;
    this.signals.checkReach(nodeOf(pid), 'link to');
    (proc.links ??= new Set()).add(pid);
    this.signals.signal([Sig.Link, pid, proc.pid]);
    return true;
  }

  private unlink(pid: Pid): true {
    const proc = this.self('unlink');
    if (proc.links?.delete(pid)) this.signals.signal([Sig.Unlink, pid, proc.pid]);
    return true;
  }

  private monitor(target: Pid | string): string {
    const proc = this.self('monitor');
    const ref = this.makeRef();
    const pid = isPid(target) ? target : this.table.named(target)?.pid;
    // A live process of this node, with no signal queued before this one: set up directly.
    const local = pid ? this.table.get(pid) : undefined;
    if (local && this.signals.idle()) {
      (proc.monitors ??= new RefTable()).set(ref, pid!);
      (local.watchers ??= new RefTable()).set(ref, proc.pid);
      return ref;
    }
    if (pid) this.signals.checkReach(nodeOf(pid), 'monitor');
    (proc.monitors ??= new RefTable()).set(ref, pid ?? (target as Pid));
    if (!pid) this.signals.signal([Sig.Down, proc.pid, target as Pid, ref, 'noproc']);
    else this.signals.signal([Sig.Monitor, pid, proc.pid, ref]);
    return ref;
  }

  /** Removes a monitor; with `flush`, also a DOWN for it already in the mailbox (erlang:demonitor/2's flush). */
  private demonitor(ref: string, flush = false): true {
    const proc = this.self('demonitor');
    const watched = proc.monitors?.get(ref);
    if (watched !== undefined) {
      proc.monitors!.delete(ref);
      const local = this.table.get(watched);
      if (local && this.signals.idle()) local.watchers?.delete(ref);
      else this.signals.signal([Sig.Demonitor, watched, proc.pid, ref]);
    }
    if (flush && proc.mailbox.length)
      proc.mailbox.takeFirst((m) => ((m as DownMessage | null)?.type === 'DOWN' && (m as DownMessage).ref === ref ? true : undefined));
    return true;
  }

  private exitOther(pid: Pid, reason: unknown): void {
    if (!isPid(pid)) throw new BadArgument(`exit() takes a pid, got ${safeString(pid)}`);
    this.signals.checkReach(nodeOf(pid), 'send an exit signal to');
    const from = this.scheduler.running()?.pid ?? formatPid('host', 0, 0);
    // Leaving the node, the reason must copy: one that cannot is sent as its description.
    this.signals.signal([Sig.Exit, pid, from, nodeOf(pid) === this.node ? reason : copyableReason(reason), 0]);
  }

  /**
   * Unique on this node (the counter) and hard to guess (the random part): a reply or DOWN must not
   * be forgeable by ref. `#Ref<node.creation.block.random.i>`: every 64 refs a new block with a
   * fresh random part, then one concatenation per ref with no number formatted (drawing and
   * formatting per ref was a tenth of a request/reply).
   */
  private makeRef(): string {
    const i = this.nextRef;
    this.nextRef = i === 63 ? 0 : i + 1;
    if (i === 0) this.refBlock = `${this.refHead}${++this.refBlocks}.${Math.floor(random() * 2 ** 32).toString(36)}.`;
    return this.refBlock + REF_LOW[i]!;
  }
}
