// counter server, version 1: the state is a bare number.
export const vsn = '1.0.0';

export function init(start: number) {
  return start;
}

export function handleCall(request: 'get' | 'inc', _from: unknown, count: number) {
  if (request === 'inc') return { reply: count + 1, state: count + 1 };
  return { reply: count, state: count };
}

export function handleCast(_message: unknown, count: number) {
  return { noreply: count };
}
