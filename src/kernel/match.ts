/**
 * Selective-receive patterns, Erlang style: a pattern is a predicate, the wildcard `ANY`, or a
 * value matched structurally — arrays element by element, plain objects key by key (keys the
 * pattern leaves out are free), anything else with `Object.is`.
 */

export const ANY: unique symbol = Symbol.for('subnode.any');

export type Pattern = typeof ANY | ((message: unknown) => boolean) | unknown;

export function matches(pattern: Pattern, value: unknown): boolean {
  if (pattern === ANY) return true;
  if (typeof pattern === 'function') return Boolean((pattern as (m: unknown) => unknown)(value));
  if (Array.isArray(pattern)) {
    if (!Array.isArray(value) || value.length !== pattern.length) return false;
    for (let i = 0; i < pattern.length; i++) if (!matches(pattern[i], value[i])) return false;
    return true;
  }
  if (pattern !== null && typeof pattern === 'object') {
    if (value === null || typeof value !== 'object') return false;
    for (const key of Object.keys(pattern)) {
      if (!(key in value)) return false;
      if (!matches((pattern as Record<string, unknown>)[key], (value as Record<string, unknown>)[key])) return false;
    }
    return true;
  }
  return Object.is(pattern, value);
}
