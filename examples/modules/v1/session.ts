// session server, version 1: a flat record of one user's hits. Every hit carries its sender and a
// sequence number, so the session can tell whether anything arrived out of order.
export const vsn = '1.0.0';

export interface State {
  user: string;
  hits: number;
  last: Record<string, number>;
  outOfOrder: number;
}
interface Hit {
  from: string;
  seq: number;
}

export function init(user: string): State {
  return { user, hits: 0, last: {}, outOfOrder: 0 };
}

export function handleCast(hit: Hit, state: State) {
  const expected = (state.last[hit.from] ?? -1) + 1;
  return {
    noreply: { ...state, hits: state.hits + 1, last: { ...state.last, [hit.from]: hit.seq }, outOfOrder: state.outOfOrder + (hit.seq === expected ? 0 : 1) },
  };
}

export function handleCall(_request: 'stats', _from: unknown, state: State) {
  return { reply: { user: state.user, hits: state.hits, outOfOrder: state.outOfOrder, vsn }, state };
}

// Taking a v2 state back, should a session ever move to a node still on v1.
export function codeChange(_oldVsn: unknown, state: { user: string; stats: Omit<State, 'user'> }): State {
  return { user: state.user, ...state.stats };
}
