/**
 * A supervisor's state as plain data (what `getState` returns and a code change keeps), the
 * requests it answers, and the queries answered from the state alone (which_children,
 * count_children) and the change a code change makes to it. The behaviour that acts on it is
 * supervisor.ts.
 */
import { isPid, type Pid } from './pid.js';
import { checkFlags, checkSpecs, SpecError, type ChildCounts, type ChildInfo, type Spec, type Strategy, type SupervisorInfo } from './supervisor-spec.js';

export interface Child {
  spec: Spec;
  pid: Pid | null | 'restarting';
}
export interface Dynamic {
  pid: Pid | 'restarting';
  args: unknown[] | null;
}

/** A supervisor's state (its behaviour state: `getState` returns it). Plain data. */
export interface SupState {
  module: string;
  /** init's arguments: a code change runs the new version's init with them again. */
  args: unknown[];
  strategy: Strategy;
  intensity: number;
  period: number;
  /** Static children, in start order. */
  children: Child[];
  /** simple_one_for_one: the one spec, and the children by pid (or `restarting:<pid>`). */
  template: Spec | null;
  dynamic: Map<string, Dynamic>;
  /** When the restarts within the last period happened. */
  restarts: number[];
}

/** A request to a supervisor: the `$call` body of `supervisor.startChild(…)` and the others. */
export interface SupRequest {
  $sup: 'start_child' | 'restart_child' | 'terminate_child' | 'delete_child' | 'which_children' | 'count_children';
  arg?: unknown;
}

export function isSupRequest(request: unknown): request is SupRequest {
  return typeof request === 'object' && request !== null && typeof (request as SupRequest).$sup === 'string';
}

/** `whichChildren`: newest first, as OTP's which_children. */
export function whichChildren(st: SupState): ChildInfo[] {
  if (st.template) {
    const { type, modules } = st.template;
    return [...st.dynamic.values()].reverse().map((d) => ({ id: null, pid: d.pid, type, modules }));
  }
  return st.children
    .slice()
    .reverse()
    .map((c) => ({ id: c.spec.id, pid: c.pid, type: c.spec.type, modules: c.spec.modules }));
}

export function supervisorInfo(st: SupState): SupervisorInfo {
  return { strategy: st.strategy, intensity: st.intensity, period: st.period, children: whichChildren(st) };
}

/** `countChildren`, as OTP's count_children; `alive` says whether a pid still runs. */
export function countChildren(st: SupState, alive: (pid: Pid) => boolean): ChildCounts {
  if (st.template) {
    const n = st.dynamic.size;
    const active = [...st.dynamic.values()].filter((d) => isPid(d.pid) && alive(d.pid)).length;
    return { specs: 1, active, supervisors: st.template.type === 'supervisor' ? n : 0, workers: st.template.type === 'worker' ? n : 0 };
  }
  const supervisors = st.children.filter((c) => c.spec.type === 'supervisor').length;
  return {
    specs: st.children.length,
    active: st.children.filter((c) => isPid(c.pid) && alive(c.pid)).length,
    supervisors,
    workers: st.children.length - supervisors,
  };
}

/**
 * A code change's new `init` result, taken by the state: its flags replace the old ones and its
 * specs replace those of existing children (which keep running). New static specs are added but
 * not started; children it no longer names are kept. All checked first: on any error nothing changes.
 */
export function reinit(st: SupState, result: unknown): void {
  const flags = checkFlags(result);
  const specs = checkSpecs((result as { children?: unknown }).children ?? []);
  if ((flags.strategy === 'simple_one_for_one') !== (st.template !== null)) throw new SpecError({ bad_flags: flags.strategy });
  if (st.template) {
    if (specs.length !== 1) throw new SpecError({ bad_start_spec: specs.map((s) => s.id) });
    st.template = specs[0]!;
  } else {
    const updated = specs.map((spec) => ({ spec, pid: st.children.find((c) => c.spec.id === spec.id)?.pid ?? null }));
    const kept = st.children.filter((c) => !specs.some((s) => s.id === c.spec.id));
    st.children = [...updated, ...kept];
  }
  Object.assign(st, flags);
}
