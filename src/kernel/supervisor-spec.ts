/**
 * Supervisor flags and child specs: their shapes, defaults and checks, as OTP's supervisor has
 * them (`check_flags`, `check_childspec`). A check failure is an error reason (plain data, as
 * OTP's `{invalid_restart_type, prmanent}`); the callers decide whether it ends a start or
 * answers a call. Unknown fields are errors here (OTP ignores them in maps): a misspelt
 * `restrat: 'temporary'` would otherwise silently mean `permanent`.
 */
import type { Pid } from './pid.js';
import { checkDurable, type DurableOptions } from './durable.js';
import type { SpawnOptions } from './types.js';

export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one' | 'simple_one_for_one';
export type RestartType = 'permanent' | 'transient' | 'temporary';
/** ms to wait after the `shutdown` exit signal before `kill`; `brutal_kill` kills at once. */
export type Shutdown = number | 'brutal_kill' | 'infinity';
export type ChildType = 'worker' | 'supervisor';

/** How a child starts: a raw process `module.fn(...args)`, or a behaviour with its callback module. */
export type ChildStart =
  | { module: string; fn: string; args?: unknown[] }
  /** A server may be registered under `name`, and keep durable state (src/kernel/durable.ts) under its name or `durable.key`. */
  | { server: string; args?: unknown[]; name?: string; durable?: DurableOptions }
  | { statem: string; args?: unknown[] }
  | { supervisor: string; args?: unknown[] };

export interface ChildSpec {
  id: string;
  start: ChildStart;
  restart?: RestartType;
  shutdown?: Shutdown;
  type?: ChildType;
  /** As OTP's `modules` (for release handling); defaults to the start's module. */
  modules?: string[] | 'dynamic';
}

export interface SupFlags {
  strategy?: Strategy;
  /** Restarts allowed within `period` ms; one more and the supervisor exits with `shutdown`. */
  intensity?: number;
  period?: number;
}

/** What a supervisor callback module's `init(...args)` returns (or `'ignore'`). */
export interface SupSpec extends SupFlags {
  children: ChildSpec[];
}

/** A child spec with every default filled in. */
export interface Spec {
  id: string;
  start: { kind: 'raw' | 'server' | 'statem' | 'supervisor'; module: string; fn: string; args: unknown[]; options?: SpawnOptions };
  restart: RestartType;
  shutdown: Shutdown;
  type: ChildType;
  modules: string[] | 'dynamic';
}

/** One entry of `whichChildren` (newest first, as OTP's `which_children`). */
export interface ChildInfo {
  id: string | null;
  /** null when not running, 'restarting' while a failed restart waits for its retry. */
  pid: Pid | null | 'restarting';
  type: ChildType;
  modules: string[] | 'dynamic';
}

export interface ChildCounts {
  specs: number;
  active: number;
  supervisors: number;
  workers: number;
}

/** A process's supervisor view (`processInfo(pid).supervisor`). */
export interface SupervisorInfo {
  strategy: Strategy;
  intensity: number;
  period: number;
  children: ChildInfo[];
}

const STRATEGIES = new Set(['one_for_one', 'one_for_all', 'rest_for_one', 'simple_one_for_one']);
const RESTARTS = new Set(['permanent', 'transient', 'temporary']);
const SPEC_KEYS = new Set(['id', 'start', 'restart', 'shutdown', 'type', 'modules']);
const FLAG_KEYS = new Set(['strategy', 'intensity', 'period', 'children']);
const START_KINDS = ['server', 'statem', 'supervisor'] as const;

/** Thrown by the checks: `reason` is the OTP-shaped error term. */
export class SpecError {
  constructor(readonly reason: unknown) {}
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks the flags of an init result; returns them with defaults (one_for_one, 1 in 5000 ms). */
export function checkFlags(init: unknown): { strategy: Strategy; intensity: number; period: number } {
  if (!isObject(init)) throw new SpecError({ supervisor_data: { invalid_type: init } });
  for (const key of Object.keys(init)) if (!FLAG_KEYS.has(key)) throw new SpecError({ supervisor_data: { unknown_flag: key } });
  const strategy = init.strategy ?? 'one_for_one';
  const intensity = init.intensity ?? 1;
  const period = init.period ?? 5000;
  if (typeof strategy !== 'string' || !STRATEGIES.has(strategy)) throw new SpecError({ supervisor_data: { invalid_strategy: strategy } });
  if (typeof intensity !== 'number' || !Number.isInteger(intensity) || intensity < 0)
    throw new SpecError({ supervisor_data: { invalid_intensity: intensity } });
  if (typeof period !== 'number' || !Number.isFinite(period) || period <= 0) throw new SpecError({ supervisor_data: { invalid_period: period } });
  return { strategy: strategy as Strategy, intensity, period };
}

/** Checks one child spec (OTP's `check_childspec`); returns it with defaults. */
export function checkSpec(raw: unknown): Spec {
  if (!isObject(raw)) throw new SpecError({ invalid_child_spec: raw });
  for (const key of Object.keys(raw)) if (!SPEC_KEYS.has(key)) throw new SpecError({ invalid_child_spec_field: key });
  if (!('id' in raw)) throw new SpecError('missing_id');
  if (typeof raw.id !== 'string' || !raw.id) throw new SpecError({ invalid_child_id: raw.id });
  if (!('start' in raw)) throw new SpecError('missing_start');
  const start = checkStart(raw.start);
  const restart = raw.restart ?? 'permanent';
  if (typeof restart !== 'string' || !RESTARTS.has(restart)) throw new SpecError({ invalid_restart_type: restart });
  const type = raw.type ?? (start.kind === 'supervisor' ? 'supervisor' : 'worker');
  if (type !== 'worker' && type !== 'supervisor') throw new SpecError({ invalid_child_type: type });
  const shutdown = raw.shutdown ?? (type === 'supervisor' ? 'infinity' : 5000);
  if (!(shutdown === 'brutal_kill' || shutdown === 'infinity' || (typeof shutdown === 'number' && Number.isInteger(shutdown) && shutdown >= 0))) {
    throw new SpecError({ invalid_shutdown: shutdown });
  }
  const modules = raw.modules ?? [start.module];
  if (modules !== 'dynamic' && !(Array.isArray(modules) && modules.every((m) => typeof m === 'string'))) throw new SpecError({ invalid_modules: modules });
  return { id: raw.id, start, restart: restart as RestartType, shutdown: shutdown as Shutdown, type, modules: modules as Spec['modules'] };
}

function checkStart(start: unknown): Spec['start'] {
  if (!isObject(start)) throw new SpecError({ invalid_mfa: start });
  const args = start.args ?? [];
  if (!Array.isArray(args)) throw new SpecError({ invalid_mfa: start });
  const kinds = START_KINDS.filter((k) => k in start);
  if ('module' in start || 'fn' in start) {
    const extra = Object.keys(start).filter((k) => k !== 'module' && k !== 'fn' && k !== 'args');
    if (extra.length || typeof start.module !== 'string' || typeof start.fn !== 'string') throw new SpecError({ invalid_mfa: start });
    return { kind: 'raw', module: start.module, fn: start.fn, args };
  }
  const kind = kinds[0];
  const extra = Object.keys(start).filter((k) => k !== kind && k !== 'args' && !(kind === 'server' && (k === 'name' || k === 'durable')));
  if (kinds.length !== 1 || extra.length || typeof start[kind!] !== 'string') throw new SpecError({ invalid_mfa: start });
  const options: SpawnOptions = {};
  if (start.name !== undefined) {
    if (typeof start.name !== 'string' || !start.name) throw new SpecError({ invalid_mfa: start });
    options.name = start.name;
  }
  if (start.durable !== undefined) {
    try {
      checkDurable(start.durable, options.name);
    } catch (error) {
      throw new SpecError({ invalid_durable: (error as Error).message });
    }
    options.durable = start.durable as DurableOptions;
  }
  return { kind: kind!, module: start[kind!] as string, fn: 'init', args, ...(options.name !== undefined || options.durable ? { options } : {}) };
}

/** Checks a list of specs: each valid, ids unique (OTP's `check_childspecs`). */
export function checkSpecs(children: unknown): Spec[] {
  if (!Array.isArray(children)) throw new SpecError({ invalid_children: children });
  const specs = children.map(checkSpec);
  const seen = new Set<string>();
  for (const s of specs) {
    if (seen.has(s.id)) throw new SpecError({ duplicate_child_name: s.id });
    seen.add(s.id);
  }
  return specs;
}

/** A normal exit for a transient child: `normal`, `shutdown` or `{ shutdown: … }`. */
export function isNormalExit(reason: unknown): boolean {
  return reason === 'normal' || reason === 'shutdown' || (isObject(reason) && 'shutdown' in reason);
}

/** The spec as the user wrote it back (which_children, getState). */
export function specOf(spec: Spec): ChildSpec {
  const { kind, module, fn, args } = spec.start;
  const start: ChildStart = kind === 'raw' ? { module, fn, args } : ({ [kind]: module, args } as ChildStart);
  return { id: spec.id, start, restart: spec.restart, shutdown: spec.shutdown, type: spec.type, modules: spec.modules };
}
