// counter server, version 2: the state records when the count last changed.
export const vsn = '2.0.0';

interface State {
  count: number;
  changedAt: string | null;
}

export function init(start: number): State {
  return { count: start, changedAt: null };
}

export function handleCall(request: 'get' | 'inc' | 'info', _from: unknown, state: State) {
  if (request === 'inc') {
    const next = { count: state.count + 1, changedAt: new Date().toISOString() };
    return { reply: next.count, state: next };
  }
  if (request === 'info') return { reply: { ...state, vsn }, state };
  return { reply: state.count, state };
}

export function handleCast(_message: unknown, state: State) {
  return { noreply: state };
}

// Called once per process during the upgrade, while it is suspended: v1's number becomes v2's record.
export function codeChange(oldVsn: unknown, state: unknown, extra: { note?: string }): State {
  if (oldVsn === '1.0.0') return { count: state as number, changedAt: extra.note ?? null };
  if (typeof oldVsn === 'object' && oldVsn !== null && 'down' in oldVsn) return state as State;
  return state as State;
}
