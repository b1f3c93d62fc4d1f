/**
 * Code policies: how many old versions of a module a node keeps (retention), and what happens to
 * processes still running a version that has to go (purge mode).
 *
 * - retention `erlang`: one old version, kept until purged, as on the BEAM;
 *   `stack` (depth N): up to N old versions; `forever`: any number.
 *   Under `stack` and `forever` an old version nothing runs any more is collected at once.
 * - purge `kill`: kill the lingering processes (reason `killed`), as `code:purge/1` does;
 *   `soft`: refuse with the lingering pids, as `code:soft_purge/1` does;
 *   `{ drain: ms, then }`: let no process enter the old version, wait up to `ms` for its
 *   processes to leave it, then `kill` the rest or `refuse`.
 */
import { BadArgument } from '../errors.js';

export type Retention = { kind: 'erlang' } | { kind: 'stack'; depth: number } | { kind: 'forever' };
export type PurgeMode = 'kill' | 'soft' | { drain: number; then: 'kill' | 'refuse' };

export interface CodePolicy {
  retention: Retention;
  /** What a load does when it needs room: applied to the oldest versions. */
  purge: PurgeMode;
}

export const DEFAULT_POLICY: CodePolicy = { retention: { kind: 'erlang' }, purge: 'soft' };

/** How many old versions the retention allows beside the current one. */
export function oldSlots(retention: Retention): number {
  return retention.kind === 'erlang' ? 1 : retention.kind === 'stack' ? retention.depth : Infinity;
}

/** Whether old versions go away as soon as nothing runs them. */
export function collectsIdle(retention: Retention): boolean {
  return retention.kind !== 'erlang';
}

export function checkPolicy(value: unknown, where = 'code policy'): CodePolicy {
  if (!value || typeof value !== 'object') throw new BadArgument(`${where} must be an object { retention, purge }`);
  const { retention, purge } = value as Partial<CodePolicy>;
  return { retention: checkRetention(retention ?? DEFAULT_POLICY.retention, where), purge: checkPurge(purge ?? DEFAULT_POLICY.purge, where) };
}

export function checkRetention(value: unknown, where = 'code policy'): Retention {
  const r = value as Retention;
  if (r && typeof r === 'object') {
    if (r.kind === 'erlang' || r.kind === 'forever') return { kind: r.kind };
    if (r.kind === 'stack') {
      if (Number.isInteger(r.depth) && r.depth >= 1) return { kind: 'stack', depth: r.depth };
      throw new BadArgument(`${where}: stack retention needs an integer depth >= 1, got ${JSON.stringify(r.depth)}`);
    }
  }
  throw new BadArgument(`${where}: retention must be { kind: 'erlang' }, { kind: 'stack', depth } or { kind: 'forever' }, got ${JSON.stringify(value)}`);
}

export function checkPurge(value: unknown, where = 'code policy'): PurgeMode {
  if (value === 'kill' || value === 'soft') return value;
  const d = value as { drain?: unknown; then?: unknown };
  if (d && typeof d === 'object' && typeof d.drain === 'number' && d.drain >= 0 && Number.isFinite(d.drain) && (d.then === 'kill' || d.then === 'refuse')) {
    return { drain: d.drain, then: d.then };
  }
  throw new BadArgument(`${where}: purge must be 'kill', 'soft' or { drain: ms, then: 'kill' | 'refuse' }, got ${JSON.stringify(value)}`);
}
