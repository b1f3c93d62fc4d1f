// A "subclass" of animal: a server whose state is an animal; it inherits describe().
import * as animal from './animal.js';

export const vsn = 1;
export function init(name: string) {
  return animal.create(name, 'meow');
}
export function handleCall(request: string, _from: unknown, state: any) {
  if (request === 'describe') return { reply: animal.describe(state), state };
  return { reply: 'unknown request', state };
}
export function handleCast(_m: unknown, state: unknown) {
  return { noreply: state };
}
