/**
 * Ready-made code policies (retention × purge mode). Give one to a node (`{ name, code: stack(5) }`),
 * to one module (`modulePolicies: { billing: forever }`), or later with `node.setPolicy(...)`.
 */
import type { CodePolicy, PurgeMode } from '../src/kernel/policy.js';

/**
 * The BEAM's rule: one current and one old version. Loading over old code that processes still run
 * fails with NotPurged (purge first, or load with `{ purge: 'kill' }`, which is what `l(M)` does).
 */
export const erlang: CodePolicy = { retention: { kind: 'erlang' }, purge: 'soft' };

/** The BEAM's rule with `l(M)` behaviour: loading kills processes still in the oldest version. */
export const erlangKill: CodePolicy = { retention: { kind: 'erlang' }, purge: 'kill' };

/** Up to `depth` old versions, each kept while any process runs it; beyond that, `purge` decides. */
export function stack(depth: number, purge: PurgeMode = 'soft'): CodePolicy {
  return { retention: { kind: 'stack', depth }, purge };
}

/** Old versions stay as long as any process runs them, then are collected. Nothing is ever killed. */
export const forever: CodePolicy = { retention: { kind: 'forever' }, purge: 'soft' };

/** A purge mode: stop new entries, wait up to `ms` for processes to leave, then kill or refuse. */
export function drain(ms: number, then: 'kill' | 'refuse' = 'kill'): PurgeMode {
  return { drain: ms, then };
}
