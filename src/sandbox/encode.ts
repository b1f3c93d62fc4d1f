/**
 * Runs in the isolate (and anywhere: no Node API). `encode(value)` turns what the kernel sends out
 * of a sandbox into ONE string, the only thing the bridge lets cross: a string copies out of an
 * isolate with no getter, no proxy trap and no shared memory, and its length is the bytes that
 * cross. Every getter and trap runs here, inside, under the CPU limit; amplification (one string
 * referenced N times is N copies in the encoding) is paid in the isolate's own heap.
 *
 * Nothing here is trusted: module code shares this realm and can patch what this file uses. The
 * trusted half (src/node/decode.ts) checks the text strictly; a corrupted encoder only garbles its
 * own node's output. The built-ins it needs are still taken at load, before module code runs, so a
 * node that is merely careless cannot break its own messages.
 *
 * The encoding, as JSON: a string, a finite number (not -0), a boolean or null stands for itself;
 * a JSON object is a plain object that is JSON through and through (only such values inside it,
 * plain arrays as JSON arrays, no object twice), read as JSON.parse makes it; anything else is an
 * array whose first item is a tag:
 *   ['u'] undefined   ['n', 'NaN' | 'Infinity' | '-Infinity' | '-0']   ['b', digits] bigint
 *   ['a', ...items]   ['o', key, value, ...]   ['m', key, value, ...] Map   ['s', ...items] Set
 *   ['d', time] Date  ['r', source, flags]     ['B', base64] ArrayBuffer   ['v', type, base64] view
 *   ['e', name, message, stack, hasCause, cause] Error   ['@', n] the n-th object of this value again
 *   ['j', array] a plain array that is JSON through and through
 * Objects written as JSON are not numbered (the decoder does not walk them): an envelope in which
 * one would be referenced again is encoded without them.
 * A view crosses as its own bytes (a fresh buffer of that length); an object of a class crosses as
 * its own enumerable string-keyed properties, as structured clone copies it.
 */
import { brand, sharedMemoryKind } from '../kernel/values.js';

export const MAX_DEPTH = 200;

/** Encoded characters one batch may take (at least twice `maxMessageBytes`). */
export const BATCH_CHARS = 8 * 2 ** 20;
/** Encoded characters all the batches of one slice (one entry into the isolate) may take. */
export const SLICE_CHARS = 32 * 2 ** 20;
/** Encoded characters one event or control result may take. */
export const VALUE_CHARS = 64 * 2 ** 20;

export function batchBudget(maxMessageBytes: number | undefined): number {
  return Math.max(BATCH_CHARS, 2 * (maxMessageBytes ?? 0));
}

const stringify = JSON.stringify;
const keys = Object.keys;
const isArray = Array.isArray;
const apply = Reflect.apply;
const getPrototypeOf = Object.getPrototypeOf;
const NativeError = Error;
const NativeMap = Map;
const NativeSet = Set;
const mapForEach = Map.prototype.forEach;
const setForEach = Set.prototype.forEach;
const NativeUint8Array = Uint8Array;
const getter = (o: object, key: PropertyKey) => Object.getOwnPropertyDescriptor(o, key)!.get!;
const ObjectPrototype = Object.prototype;
const TypedArrayProto = getPrototypeOf(Uint8Array.prototype) as object;
const typedArrayTag = getter(TypedArrayProto, Symbol.toStringTag);
const typedArrayBuffer = getter(TypedArrayProto, 'buffer');
const typedArrayOffset = getter(TypedArrayProto, 'byteOffset');
const typedArrayLength = getter(TypedArrayProto, 'byteLength');
const dataViewBuffer = getter(DataView.prototype, 'buffer');
const dataViewOffset = getter(DataView.prototype, 'byteOffset');
const dataViewLength = getter(DataView.prototype, 'byteLength');
const arrayBufferLength = getter(ArrayBuffer.prototype, 'byteLength');
const mapSize = getter(Map.prototype, 'size');
const setSize = getter(Set.prototype, 'size');
const dateGetTime = Date.prototype.getTime;
const regExpSource = getter(RegExp.prototype, 'source');
const regExpFlags = getter(RegExp.prototype, 'flags');

/** Thrown for what cannot leave a sandbox: functions, symbols, shared memory, nesting too deep. */
export class NotEncodable extends Error {}

/** Thrown before any text is made for a value whose encoding would be over the budget. */
export class OverBudget extends NotEncodable {
  constructor(
    readonly chars: number,
    readonly budget: number,
  ) {
    super(`its encoding takes over ${budget} characters`);
  }
}

// A lower bound of the encoding's length, counted while the tree is built: a value over the budget
// is refused before JSON.stringify spends its time (and the isolate's heap) making the text.
let chars = 0;
let budget = Infinity;
/** Where the numbering of the envelope being encoded starts (encodeBatch). */
let base = 0;
/** Objects numbered so far in this encoding. */
let numbered = 0;

// Plain values are written as JSON (`json`) while `jsonOn`; an object written so is marked in the
// `seen` map with `jsonMark` (negative: below every numbering, and new for each value), so meeting
// it again in the same value is noticed (`jsonAgain`) and the value is encoded again without JSON.
let jsonOn = true;
let jsonMark = 0;
let jsonAgain = false;
/** Objects marked by the JSON attempt under way (unmarked if it fails). */
const attempt: object[] = [];
/** Objects a JSON attempt failed inside: not tried again, so no object is walked by more than one failed attempt. */
let notJson: Set<object> | undefined;

export function encode(value: unknown, maxChars = Infinity): string {
  chars = 0;
  budget = maxChars;
  notJson = undefined;
  jsonMark = 0;
  const out = encodeOne(value, 0, new NativeMap());
  notJson = undefined;
  return stringify(out);
}

/**
 * One value, or an envelope's fields (`fields`), numbered from `at`; encoded again without JSON if
 * an object written as JSON is met again (the decoder could not refer to it).
 */
function encodeOne(value: unknown, at: number, seen: Map<object, number>, fields = false): unknown {
  const start = chars;
  base = numbered = at;
  jsonOn = true;
  jsonMark--;
  jsonAgain = false;
  const out = fields ? fieldsOf(value as unknown[], seen) : tree(value, seen, 0);
  if (!jsonAgain) return out;
  chars = start;
  numbered = at;
  jsonOn = false;
  const fresh = new NativeMap<object, number>();
  return fields ? fieldsOf(value as unknown[], fresh) : tree(value, fresh, 0);
}

/** An outbound batch: `[[sig, target, ...fields]]`, each envelope with its own object numbering. */
export function encodeBatch(envelopes: readonly unknown[], maxChars = Infinity): string {
  chars = 0;
  numbered = 0;
  budget = maxChars;
  notJson = undefined;
  jsonMark = 0;
  const out: unknown[] = [];
  // One map for the batch: an envelope's objects are numbered from `base` (the decoder numbers
  // each envelope's from 0); an object met in an earlier envelope is encoded again.
  const seen = new NativeMap<object, number>();
  for (let i = 0; i < envelopes.length; i++) {
    const e = envelopes[i];
    if (!isArray(e)) throw new NotEncodable('an envelope is not an array');
    out[i] = encodeOne(e, numbered, seen, true);
  }
  notJson = undefined;
  return stringify(out);
}

/** An envelope's fields: the envelope itself is a list of encoded values, not a value. */
function fieldsOf(e: unknown[], seen: Map<object, number>): unknown[] {
  const fields: unknown[] = [];
  for (let j = 0; j < e.length; j++) fields[j] = tree(e[j], seen, 0);
  return fields;
}

function tree(value: unknown, seen: Map<object, number>, depth: number): unknown {
  chars += 4;
  switch (typeof value) {
    case 'string':
      chars += value.length;
      if (chars > budget) throw new OverBudget(chars, budget);
      return value;
    case 'boolean':
      return value;
    case 'number':
      if (value !== value) return ['n', 'NaN'];
      if (value === Infinity) return ['n', 'Infinity'];
      if (value === -Infinity) return ['n', '-Infinity'];
      return value === 0 && 1 / value < 0 ? ['n', '-0'] : value;
    case 'undefined':
      return ['u'];
    case 'bigint':
      return ['b', `${value}`];
    case 'function':
    case 'symbol':
      throw new NotEncodable(`a ${typeof value} cannot leave the sandbox`);
  }
  if (value === null) return null;
  const object = value as object;
  // Direct method calls (fast): a patched Map.prototype only garbles this node's own output.
  const index = seen.get(object);
  if (index !== undefined) {
    if (index >= base) return ['@', index - base];
    if (index === jsonMark) jsonAgain = true;
  }
  if (depth >= MAX_DEPTH) throw new NotEncodable(`a value nested deeper than ${MAX_DEPTH} levels cannot leave the sandbox`);
  const array = isArray(object);
  if (jsonOn && index !== jsonMark && !notJson?.has(object) && jsonOf(object, array, seen, depth)) return array ? ['j', object] : object;
  seen.set(object, numbered++);
  const d = depth + 1;
  if (array) {
    const list = object as unknown[];
    const out: unknown[] = ['a'];
    const length = list.length;
    for (let i = 0; i < length; i++) out[i + 1] = tree(list[i], seen, d);
    return out;
  }
  // Plain objects (nearly all) skip the brand checks. Whatever this encoder makes of an object,
  // nothing shared can come of it: the trusted half has no way to decode shared memory.
  const proto = getPrototypeOf(object) as unknown;
  return proto === ObjectPrototype || proto === null ? plainObject(object, seen, d) : builtIn(object, seen, d);
}

/** Whether a plain object or array is written as JSON (if not, its marks are undone and its characters uncounted). */
function jsonOf(object: object, array: boolean, seen: Map<object, number>, depth: number): boolean {
  const start = chars;
  attempt.length = 0;
  const plain = isJsonObject(object, array, seen, depth);
  if (!plain) {
    chars = start;
    for (let i = 0; i < attempt.length; i++) seen.delete(attempt[i]!);
  }
  attempt.length = 0;
  return plain;
}

/**
 * Whether `value` is plain JSON through and through, counted as `tree` counts it; the objects a
 * failure is inside are remembered in `notJson`. Such a value is written by JSON.stringify as it is:
 * no copy (a getter read again there only garbles its own node's output; the decoder checks the text).
 */
function isJson(value: unknown, seen: Map<object, number>, depth: number): boolean {
  chars += 4;
  switch (typeof value) {
    case 'string':
      chars += value.length;
      if (chars > budget) throw new OverBudget(chars, budget);
      return true;
    case 'boolean':
      return true;
    case 'number':
      return value === value && value !== Infinity && value !== -Infinity && (value !== 0 || 1 / value > 0);
    case 'object':
      if (value === null) return true;
      break;
    default:
      return false;
  }
  const object = value as object;
  const index = seen.get(object);
  return (index === undefined || (index < base && index !== jsonMark)) && depth < MAX_DEPTH && isJsonObject(object, isArray(object), seen, depth);
}

/** `isJson` for an object not met yet in this value, within MAX_DEPTH. */
function isJsonObject(object: object, array: boolean, seen: Map<object, number>, depth: number): boolean {
  if (!array) {
    const proto = getPrototypeOf(object) as unknown;
    if (proto !== ObjectPrototype && proto !== null) return false;
  }
  seen.set(object, jsonMark);
  attempt[attempt.length] = object;
  const d = depth + 1;
  if (array) {
    const list = object as unknown[];
    const length = list.length;
    for (let i = 0; i < length; i++) if (!isJson(list[i], seen, d)) return failed(object);
    return true;
  }
  const names = keys(object);
  for (let i = 0; i < names.length; i++) if (!isJson((object as Record<string, unknown>)[names[i]!], seen, d)) return failed(object);
  return true;
}

function failed(object: object): false {
  (notJson ??= new NativeSet()).add(object);
  return false;
}

function plainObject(object: object, seen: Map<object, number>, d: number): unknown[] {
  const out: unknown[] = ['o'];
  const names = keys(object);
  for (let i = 0; i < names.length; i++) {
    const key = names[i]!;
    out[out.length] = key;
    out[out.length] = tree((object as Record<string, unknown>)[key], seen, d);
  }
  return out;
}

function builtIn(object: object, seen: Map<object, number>, d: number): unknown {
  const shared = sharedMemoryKind(object);
  if (shared !== undefined) throw new NotEncodable(`${shared} cannot leave the sandbox`);
  if (brand(mapSize, object)) {
    const out: unknown[] = ['m'];
    apply(mapForEach, object, [
      (v: unknown, k: unknown) => {
        out[out.length] = tree(k, seen, d);
        out[out.length] = tree(v, seen, d);
      },
    ]);
    return out;
  }
  if (brand(setSize, object)) {
    const out: unknown[] = ['s'];
    apply(setForEach, object, [
      (v: unknown) => {
        out[out.length] = tree(v, seen, d);
      },
    ]);
    return out;
  }
  if (brand(dateGetTime, object)) return ['d', tree(apply(dateGetTime, object, []), seen, d)];
  if (brand(regExpSource, object)) return ['r', `${apply(regExpSource, object, []) as string}`, `${apply(regExpFlags, object, []) as string}`];
  if (brand(arrayBufferLength, object)) return ['B', base64(counted(new NativeUint8Array(object as ArrayBuffer)))];
  if (apply(typedArrayTag, object, []) !== undefined) {
    const bytes = new NativeUint8Array(
      apply(typedArrayBuffer, object, []) as ArrayBuffer,
      apply(typedArrayOffset, object, []) as number,
      apply(typedArrayLength, object, []) as number,
    );
    return ['v', apply(typedArrayTag, object, []) as string, base64(counted(bytes))];
  }
  if (brand(dataViewLength, object)) {
    const bytes = new NativeUint8Array(
      apply(dataViewBuffer, object, []) as ArrayBuffer,
      apply(dataViewOffset, object, []) as number,
      apply(dataViewLength, object, []) as number,
    );
    return ['v', 'DataView', base64(counted(bytes))];
  }
  if (object instanceof NativeError) {
    const e = object as Error & { cause?: unknown };
    const hasCause = 'cause' in e;
    return ['e', `${e.name}`, `${e.message}`, e.stack === undefined ? null : `${e.stack}`, hasCause, hasCause ? tree(e.cause, seen, d) : null];
  }
  return plainObject(object, seen, d);
}

function counted(bytes: Uint8Array): Uint8Array {
  chars += Math.ceil(bytes.length / 3) * 4;
  if (chars > budget) throw new OverBudget(chars, budget);
  return bytes;
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** Every pair of base64 digits, made on first use: making them is half of what loading the kernel's modules costs an isolate. */
const PAIRS: string[] = [];
function pairs(): string[] {
  if (!PAIRS.length) for (let i = 0; i < 4096; i++) PAIRS[i] = ALPHABET[i >> 6]! + ALPHABET[i & 63]!;
  return PAIRS;
}

/** Standard base64 with padding (an isolate has no btoa and no Buffer). */
export function base64(bytes: Uint8Array): string {
  const table = pairs();
  let out = '';
  const n = bytes.length;
  const whole = n - (n % 3);
  let chunk = '';
  for (let i = 0; i < whole; i += 3) {
    const triple = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    chunk += table[triple >> 12]! + table[triple & 4095]!;
    if (chunk.length >= 8192) {
      out += chunk;
      chunk = '';
    }
  }
  out += chunk;
  if (n - whole === 1) {
    const b = bytes[whole]! << 16;
    out += table[b >> 12]! + '==';
  } else if (n - whole === 2) {
    const b = (bytes[whole]! << 16) | (bytes[whole + 1]! << 8);
    out += table[b >> 12]! + ALPHABET[(b >> 6) & 63]! + '=';
  }
  return out;
}
