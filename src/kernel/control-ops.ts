/**
 * The node's control operations, defined once. Whatever runs a node (a worker thread, an isolate)
 * serves exactly this table, the host's `NodeHandle` calls it through `NodeControl` (derived from
 * it in src/wire/node.ts), and the isolate boundary observes it by the same names: adding an
 * operation is one line here and one method on `NodeHandle`, and every side is type-checked
 * against this list.
 *
 * Every operation answers one shape on the wire, a `Result` (`settle` below), queries included.
 * Runs wherever the kernel runs, isolates included: no Node API.
 */
import { toWire, type WireError } from '../errors.js';
import type { Capabilities, Limits } from './capabilities.js';
import type { Kernel } from './kernel.js';
import type { Pid } from './pid.js';
import type { CodePolicy, PurgeMode } from './policy.js';
import type { LoadOptions } from './code-ops.js';
import type { Forward, MigrationSnapshot, SpawnOptions } from './types.js';
import type { SupRequest } from './supervisor-state.js';
import { applyUpgrade, type UpgradeStep } from './upgrade.js';
import type { DurableState } from './durable-spec.js';
import { rollingUpgrade, type RollingOptions } from './rolling.js';

export function controlOps(kernel: Kernel) {
  return {
    load: (module: string, js: string, options: LoadOptions) => kernel.load(module, js, options),
    purge: (module: string, mode: PurgeMode) => kernel.purge(module, mode),
    checkProcessCode: (pid: Pid, module: string) => kernel.checkProcessCode(pid, module),
    lingering: (module: string, version?: number) => kernel.lingering(module, version),
    deleteModule: (module: string) => kernel.deleteModule(module),
    setPolicy: (policy: CodePolicy, module?: string) => kernel.setPolicy(policy, module),
    startBehaviour: (kind: 'server' | 'statem', module: string, args: unknown[], options: SpawnOptions) => kernel.startBehaviour(kind, module, args, options),
    behavioursOf: (module: string) => kernel.behavioursOf(module),
    suspend: (pid: Pid) => kernel.suspend(pid),
    resume: (pid: Pid) => kernel.resume(pid),
    changeCode: (pid: Pid, module: string, oldVsn: unknown, extra: unknown, timeoutMs?: number) => kernel.changeCode(pid, module, oldVsn, extra, timeoutMs),
    getState: (pid: Pid) => kernel.getState(pid),
    replaceState: (pid: Pid, state: unknown) => kernel.replaceState(pid, state),
    applyUpgrade: (steps: UpgradeStep[]) => applyUpgrade(kernel, steps),
    rollingUpgrade: (steps: UpgradeStep[], options: RollingOptions) => rollingUpgrade(kernel, steps, options),
    migrateOut: (pids: Pid[]) => kernel.migrateOut(pids),
    migrateIn: (snapshots: MigrationSnapshot[], extra: unknown, timeoutMs?: number) => kernel.migrateIn(snapshots, extra, timeoutMs),
    migrateCommit: (pids: Pid[], to: string, awaitDrain: Pid[]) => kernel.migrateCommit(pids, to, awaitDrain),
    migrateAbort: (pids: Pid[]) => kernel.migrateAbort(pids),
    migrateWithdraw: (pids: Pid[], from: string) => kernel.migrateWithdraw(pids, from),
    /** Forwarding entries for pids of this node that live elsewhere, with the names they left here (replayed after a restart). */
    restoreForwards: (entries: Forward[]) => kernel.restoreForwards(entries),
    spawn: (module: string, fn: string, args: unknown[], options: SpawnOptions) => kernel.spawn(module, fn, args, options),
    exit: (pid: Pid, reason: unknown) => kernel.exit(pid, reason),
    processes: () => kernel.processes(),
    processInfo: (pid: Pid) => kernel.processInfo(pid),
    modules: () => kernel.modules(),
    whereis: (name: string) => kernel.whereis(name),
    /** `lost`: processes that had moved to the dead node; `alive`: processes homed there that live elsewhere. */
    nodeDown: (node: string, lost: Pid[], alive: Pid[] = [], upTo?: number) => kernel.nodeDown(node, lost, alive, upTo),
    /** Global-name changes, batched by the host: one call per node per tick, however many names. */
    setGlobals: (entries: [string, Pid | null][]) => kernel.setGlobals(entries),
    ping: () => 'pong' as const,
    /** Flow control: how many processes are held for sending to each node whose channel is full. */
    holding: () => kernel.holding(),
    startSupervisor: (module: string, args: unknown[], options: SpawnOptions) => kernel.startSupervisor(module, args, options),
    supervisorCall: (pid: Pid, request: SupRequest, timeoutMs?: number) => kernel.supervisorCall(pid, request, timeoutMs),
    orderlyStop: (timeoutMs: number) => kernel.orderlyStop(timeoutMs),
    /** Durable server states from the host's store, before the node's start entries run. */
    restoreDurable: (states: DurableState[]) => kernel.restoreDurable(states),
    /** Durable states not yet saved (an orderly stop's last save). */
    takeCheckpoints: () => kernel.takeCheckpoints(),
    forgetDurable: (key: string) => kernel.forgetDurable(key),
    /** `vsns`: each module's default vsn (the vsn identical code had before), as `load`'s `vsn`. */
    loadAtomic: (modules: Record<string, string>, options: { purge?: PurgeMode; vsns?: Record<string, unknown> }) => kernel.loadAtomic(modules, options),
  };
}

export type ControlOps = ReturnType<typeof controlOps>;
export type ControlOp = keyof ControlOps;
export type ControlArgs<K extends ControlOp> = Parameters<ControlOps[K]>;
/** What an operation answers once settled (an operation may finish later: a drain). */
export type ControlReply<K extends ControlOp> = Awaited<ReturnType<ControlOps[K]>>;

export type Result<T> = { ok: T } | { error: WireError };

/** A control request as it crosses to a node (whatever carries it). */
export interface ControlRequest<K extends ControlOp = ControlOp> {
  op: K;
  args: ControlArgs<K>;
}

/** The node config every kind of node boots its kernel with. */
export interface KernelConfig {
  node: string;
  creation: number;
  capabilities: Capabilities;
  limits: Limits;
}

/**
 * Runs one operation of the table and wraps its outcome as a `Result`: at once, or as a promise
 * when the operation finishes later. An operation name not in the table is an error, not a crash.
 */
export function settle(ops: ControlOps, op: string, args: unknown[]): Result<unknown> | Promise<Result<unknown>> {
  const fail = (error: unknown): Result<unknown> => ({ error: toWire(error) });
  try {
    if (!Object.prototype.hasOwnProperty.call(ops, op)) throw new Error(`unknown control operation '${op}'`);
    const value = (ops[op as ControlOp] as (...a: unknown[]) => unknown)(...args);
    return value instanceof Promise ? value.then((ok: unknown) => ({ ok }), fail) : { ok: value };
  } catch (error) {
    return fail(error);
  }
}
