/**
 * Values crossing between processes and nodes: what may be copied, how big it is, how a thrown
 * value becomes an exit reason. Plain functions; no Node API.
 */
import { NotCloneable } from '../errors.js';
import type { ErrorReason } from './signals.js';

// Brand checks for shared memory, taken when this file loads: in an isolate that is before the
// sandbox's lockdown deletes SharedArrayBuffer, so no check here depends on a global (or a
// prototype) the sandbox can change. A getter of a class accepts only that class's objects.
const apply = Reflect.apply;
const getterOf = (o: object | undefined, key: PropertyKey) => (o ? Object.getOwnPropertyDescriptor(o, key)?.get : undefined);
const g = globalThis as { SharedArrayBuffer?: { prototype: object }; WebAssembly?: { Memory?: { prototype: object } } };
const sharedLength = getterOf(g.SharedArrayBuffer?.prototype, 'byteLength');
const wasmMemoryBuffer = getterOf(g.WebAssembly?.Memory?.prototype, 'buffer');
const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype) as object;
const typedArrayTag = getterOf(typedArrayProto, Symbol.toStringTag)!;
const typedArrayBuffer = getterOf(typedArrayProto, 'buffer')!;
const dataViewBuffer = getterOf(DataView.prototype, 'buffer')!;

/** Whether `f` accepts `value` as its receiver (a brand check no prototype can fool). */
export function brand(f: ((this: unknown) => unknown) | undefined, value: object): boolean {
  if (!f) return false;
  try {
    apply(f, value, []);
    return true;
  } catch {
    return false;
  }
}

/** What shared memory a value is at its top: a SharedArrayBuffer, a view of one, a WebAssembly.Memory. */
export function sharedMemoryKind(value: object): string | undefined {
  if (brand(sharedLength, value)) return 'a SharedArrayBuffer (it would be shared, not copied)';
  if (brand(wasmMemoryBuffer, value)) return 'a WebAssembly.Memory (its buffer would be shared, not copied)';
  let buffer: unknown;
  if (apply(typedArrayTag, value, []) !== undefined) buffer = apply(typedArrayBuffer, value, []);
  else if (brand(dataViewBuffer, value)) buffer = apply(dataViewBuffer, value, []);
  return buffer && brand(sharedLength, buffer as object) ? 'a view of shared memory (it would be shared, not copied)' : undefined;
}

/** Exits that are part of normal operation and need no crash report. */
export function isQuietReason(reason: unknown): boolean {
  return (
    reason === 'normal' ||
    reason === 'shutdown' ||
    reason === 'killed' ||
    reason === 'noconnection' ||
    (typeof reason === 'object' && reason !== null && 'shutdown' in reason)
  );
}

export function errorReason(thrown: unknown): ErrorReason {
  if (thrown instanceof Error) return { error: { name: thrown.name, message: thrown.message, stack: thrown.stack } };
  return { error: { name: 'Error', message: safeString(thrown) } };
}

/** Two vsns are the same version: equal values, or equal plain data (`{ down: 2 }`). */
export function sameVsn(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  try {
    return JSON.stringify(a) === JSON.stringify(b);
  } catch {
    return false;
  }
}

/** Plain JSON data (what a release journal can hold): finite numbers, strings, booleans, null, arrays, plain objects. */
export function isJson(value: unknown, depth = 0): boolean {
  if (depth > 64) return false;
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((v) => isJson(v, depth + 1));
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) return Object.values(value).every((v) => isJson(v, depth + 1));
  return false;
}

export function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : safeString(error);
}

export function safeString(value: unknown): string {
  try {
    return typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * A message's size in bytes, at least its structured clone: strings 2 bytes a character, numbers
 * 8, containers 16 plus their contents, a typed-array view the whole buffer that crosses with it,
 * an Error its name, message, stack and cause, a RegExp its source. Stops counting once past `stopAt`.
 */
export function estimateSize(value: unknown, stopAt = Infinity): number {
  let total = 0;
  const stack: unknown[] = [value];
  const seen = new Set<object>();
  while (stack.length && total <= stopAt) {
    const v = stack.pop();
    switch (typeof v) {
      case 'string':
        total += 8 + v.length * 2;
        break;
      case 'number':
      case 'bigint':
        total += 8;
        break;
      case 'object': {
        if (v === null) {
          total += 1;
          break;
        }
        if (seen.has(v)) break;
        seen.add(v);
        total += 16;
        if (ArrayBuffer.isView(v)) total += (v.buffer as ArrayBuffer).byteLength;
        else if (v instanceof ArrayBuffer) total += v.byteLength;
        else if (v instanceof Error) {
          const e = v as Error & { cause?: unknown };
          stack.push(e.name, e.message, e.stack);
          if ('cause' in e) stack.push(e.cause);
        } else if (v instanceof RegExp) stack.push(v.source);
        else if (Array.isArray(v)) for (const item of v) stack.push(item);
        else if (v instanceof Map) for (const [k, x] of v) stack.push(k, x);
        else if (v instanceof Set) for (const x of v) stack.push(x);
        else
          for (const key of Object.keys(v)) {
            total += 8 + key.length * 2;
            stack.push((v as Record<string, unknown>)[key]);
          }
        break;
      }
      default:
        total += 4;
    }
  }
  return total;
}

/**
 * Messages to other nodes are copied by structured clone. Checking here, at `send`, lets the
 * sender get a NotCloneable error instead of a whole batch failing later on the wire.
 */
export function assertCloneable(value: unknown): void {
  const problem = uncloneable(value, 0, undefined);
  if (problem !== undefined) throw new NotCloneable(`message${problem}, which cannot be sent to another node`);
}

const ObjectPrototype = Object.prototype;

/** A prototype's class name for a message, without running any getter of the object. */
function classNameOf(proto: object): string {
  const ctor = Object.getOwnPropertyDescriptor(proto, 'constructor')?.value as unknown;
  const name = typeof ctor === 'function' ? (Object.getOwnPropertyDescriptor(ctor, 'name')?.value as unknown) : undefined;
  return typeof name === 'string' && name ? name : '(anonymous)';
}

/** Where a value fails to clone (` .a[2] is a function`), or undefined. Paths are built only on failure. */
function uncloneable(value: unknown, depth: number, seen: Set<object> | undefined): string | undefined {
  switch (typeof value) {
    case 'function':
      return ' is a function';
    case 'symbol':
      return ' is a symbol';
    case 'object': {
      if (value === null) return undefined;
      // Shallow messages (nearly all) need no cycle tracking; deep ones may be cyclic.
      if (depth > 32) {
        if (seen?.has(value)) return undefined;
        (seen ??= new Set()).add(value);
      }
      const d = depth + 1;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const p = uncloneable(value[i], d, seen);
          if (p !== undefined) return `[${i}]${p}`;
        }
        return undefined;
      }
      // Plain objects (nearly all) skip the brand checks. An object of a built-in class is checked
      // by brand, whatever its prototype says (one made to look plain is copied as plain data).
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== ObjectPrototype && proto !== null) {
        const shared = sharedMemoryKind(value);
        if (shared !== undefined) return ` is ${shared}`;
        if (value instanceof Map) {
          for (const [k, v] of value) {
            const p = uncloneable(k, d, seen) ?? uncloneable(v, d, seen);
            if (p !== undefined) return ` entry${p}`;
          }
          return undefined;
        }
        if (value instanceof Set) {
          for (const v of value) {
            const p = uncloneable(v, d, seen);
            if (p !== undefined) return ` member${p}`;
          }
          return undefined;
        }
        if (value instanceof Error) {
          const cause = 'cause' in value ? uncloneable((value as { cause?: unknown }).cause, d, seen) : undefined;
          return cause === undefined ? undefined : `.cause${cause}`;
        }
        if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date || value instanceof RegExp) return undefined;
        if (value instanceof WeakMap || value instanceof WeakSet || value instanceof Promise) return ` is a ${value.constructor.name}`;
        // Any other prototype is a user class: structured clone would copy its own fields as a
        // plain object, silently dropping its class, methods and #private fields.
        return ` is an instance of class ${classNameOf(proto as object)} (class instances lose their class and #private fields across nodes; send plain data)`;
      }
      for (const key in value) {
        if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
        const p = uncloneable((value as Record<string, unknown>)[key], d, seen);
        if (p !== undefined) return `.${key}${p}`;
      }
      return undefined;
    }
    default:
      return undefined;
  }
}
