// session server, version 2: the counters move under `stats`, and the session remembers why and
// from which version it was converted.
export const vsn = '2.0.0';

interface Stats {
  hits: number;
  last: Record<string, number>;
  outOfOrder: number;
}
export interface State {
  user: string;
  stats: Stats;
  convertedFrom: unknown;
  note: string | null;
}
interface Hit {
  from: string;
  seq: number;
}

export function init(user: string): State {
  return { user, stats: { hits: 0, last: {}, outOfOrder: 0 }, convertedFrom: null, note: null };
}

export function handleCast(hit: Hit, state: State) {
  const s = state.stats;
  const expected = (s.last[hit.from] ?? -1) + 1;
  const stats = { hits: s.hits + 1, last: { ...s.last, [hit.from]: hit.seq }, outOfOrder: s.outOfOrder + (hit.seq === expected ? 0 : 1) };
  return { noreply: { ...state, stats } };
}

export function handleCall(_request: 'stats', _from: unknown, state: State) {
  return { reply: { user: state.user, hits: state.stats.hits, outOfOrder: state.stats.outOfOrder, vsn }, state };
}

// The conversion entry point: runs on the target node when a v1 session arrives by migration
// (or on this node when it is upgraded in place). `extra` comes from migrate(…, { extra }).
export function codeChange(
  oldVsn: unknown,
  state: { user: string; hits: number; last: Record<string, number>; outOfOrder: number },
  extra?: { note?: string },
): State {
  const { user, ...stats } = state;
  return { user, stats, convertedFrom: oldVsn, note: extra?.note ?? null };
}
