// dog v2: converts its state through the base class's upgrade().
import * as animal from './animal.js';

export const vsn = 2;
export function init(name: string) {
  return animal.create(name, 'woof');
}
export function handleCall(request: string, _from: unknown, state: any) {
  if (request === 'describe') return { reply: animal.describe(state), state };
  return { reply: 'unknown request', state };
}
export function handleCast(_m: unknown, state: unknown) {
  return { noreply: state };
}
export function codeChange(_oldVsn: unknown, state: any, extra: { moods: Record<string, string> }) {
  return animal.upgrade(state, extra.moods['dog'] ?? 'calm');
}
