/**
 * How a batch of envelopes is written as bytes to cross hosts (runs on the main thread and on node
 * threads, wherever a batch is serialized or read).
 *
 * v8 serialization keeps every structured-clone type, but each call makes a serializer object
 * of its own: ~3-5 µs to write and ~1.5-2.5 µs to read even one small envelope, on each side of
 * each hop, where a call's round trip crosses two. A small batch of plain JSON data (what most
 * calls, replies and messages are) is written as JSON text instead, ~5x cheaper each way, and
 * read back as v8 would give it. Only what JSON keeps exactly is written so: strings, booleans,
 * null, finite numbers other than -0, and arrays and ordinary objects of those (by what they are
 * inside, not only by prototype: an array, or a Map, with its prototype changed is not one), each
 * object once (no shared or cyclic references), each property an enumerable data property (no
 * accessor, no hole, nothing beside an array's indexes), within bounds of count, depth and
 * characters. The writer runs no code of the value's (no getter, no proxy trap), so when it falls
 * back, v8 reads what was there, once. Anything else, or a larger batch (where v8 is faster per
 * envelope), is v8-serialized. A reader tells them apart by the first byte (v8 writes its version
 * tag, 0xFF, first; JSON text of an array begins with '[') and holds JSON text to the writer's
 * bounds.
 */
import { deserialize, serialize } from 'node:v8';
import { types } from 'node:util';
import type { Envelope } from '../kernel/signals.js';

/** Batches of at most this many envelopes may be written as JSON (past it, v8 is faster per envelope). */
const JSON_MAX_ENVELOPES = 2;
/** Values (of every depth) a JSON batch may hold, and how deep: past either, v8. */
const JSON_MAX_VALUES = 256;
const JSON_MAX_DEPTH = 16;
/** String characters (keys included) a JSON batch may hold: past it, v8 (it copies long strings as they are; JSON escapes them). */
const JSON_MAX_CHARS = 16 * 1024;
const OPEN_BRACKET = 0x5b;

const t = types;
/** Objects v8 writes by what they are inside, whatever their prototype says (or refuses to write). */
const exotic = (v: object): boolean =>
  t.isArgumentsObject(v) ||
  t.isBoxedPrimitive(v) ||
  t.isDate(v) ||
  t.isRegExp(v) ||
  t.isNativeError(v) ||
  t.isMap(v) ||
  t.isSet(v) ||
  t.isWeakMap(v) ||
  t.isWeakSet(v) ||
  t.isPromise(v) ||
  ArrayBuffer.isView(v) ||
  t.isAnyArrayBuffer(v) ||
  t.isModuleNamespaceObject(v) ||
  t.isGeneratorObject(v) ||
  t.isMapIterator(v) ||
  t.isSetIterator(v) ||
  t.isExternal(v);
const ObjectPrototype = Object.prototype;
const ArrayPrototype = Array.prototype;
const quote = JSON.stringify as (text: string) => string;
/** Not `Buffer.from`: its small buffers share a pool, and a batch's buffer may be handed to another thread. */
const utf8 = new TextEncoder();

/** Thrown inside the writer when a value is not plain JSON data: the batch goes to v8 instead. */
const NOT_JSON = Symbol('not JSON');

/**
 * The value of own property `key` when it is a plain enumerable data property; else NOT_JSON is
 * thrown (an accessor is never called here: v8 calls it, once, when the batch falls back to it).
 */
function dataOf(value: object, key: string | number): unknown {
  const d = Object.getOwnPropertyDescriptor(value, key);
  if (d === undefined || !d.enumerable || !('value' in d)) throw NOT_JSON;
  return d.value;
}

/**
 * A JSON writer for one batch: the objects it has written (none may come twice), how many values
 * and string characters. It runs no code of the value's (no getter, no proxy trap), so what v8
 * reads after a fallback is what was there.
 */
class JsonWriter {
  private readonly seen: object[] = [];
  private values = 0;
  private chars = 0;

  /** The batch: its array and its envelopes are the runtime's own (plain, dense); what they carry is checked. */
  batch(batch: readonly Envelope[]): string {
    let text = '[';
    for (let i = 0; i < batch.length; i++) {
      const envelope = batch[i]! as readonly unknown[];
      text += `${i ? ',' : ''}[`;
      for (let j = 0; j < envelope.length; j++) text += (j ? ',' : '') + this.write(envelope[j], 2);
      text += ']';
    }
    return `${text}]`;
  }

  write(value: unknown, depth: number): string {
    if (++this.values > JSON_MAX_VALUES) throw NOT_JSON;
    switch (typeof value) {
      case 'string':
        return this.string(value);
      case 'boolean':
        return value ? 'true' : 'false';
      case 'number':
        if (Number.isFinite(value) && !Object.is(value, -0)) return String(value);
        throw NOT_JSON;
      case 'object':
        return value === null ? 'null' : this.object(value, depth);
      default:
        throw NOT_JSON;
    }
  }

  private string(text: string): string {
    if ((this.chars += text.length) > JSON_MAX_CHARS) throw NOT_JSON;
    return quote(text);
  }

  private object(value: object, depth: number): string {
    // A proxy (of an array too: Array.isArray sees through it) would run its traps here.
    if (depth >= JSON_MAX_DEPTH || this.seen.includes(value) || t.isProxy(value)) throw NOT_JSON;
    this.seen.push(value);
    const proto: unknown = Object.getPrototypeOf(value);
    const array = Array.isArray(value);
    if (array ? proto !== ArrayPrototype : (proto !== ObjectPrototype && proto !== null) || exotic(value)) throw NOT_JSON;
    const keys = Object.keys(value);
    if (array) {
      // Every index a plain element (no hole, which v8 keeps), and nothing beside them (v8 keeps it too).
      const length = (value as unknown[]).length;
      if (keys.length !== length) throw NOT_JSON;
      let text = '[';
      for (let i = 0; i < length; i++) text += (i ? ',' : '') + this.write(dataOf(value, i), depth + 1);
      return `${text}]`;
    }
    let text = '{';
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      text += `${i ? ',' : ''}${this.string(key)}:${this.write(dataOf(value, key), depth + 1)}`;
    }
    return `${text}}`;
  }
}

/** The batch as bytes: JSON text when small and plain, else v8-serialized. Throws as v8 does on what cannot be cloned. */
export function encodeEnvelopes(batch: readonly Envelope[]): Uint8Array<ArrayBuffer> {
  if (batch.length <= JSON_MAX_ENVELOPES) {
    try {
      return utf8.encode(new JsonWriter().batch(batch));
    } catch (error) {
      if (error !== NOT_JSON) throw error;
    }
  }
  return serialize(batch) as Uint8Array<ArrayBuffer>;
}

/**
 * What `encodeEnvelopes` wrote (or any v8-serialized value). Throws on bytes that are neither, and
 * on JSON text past what a writer writes (more envelopes, values or depth: v8 refuses deep nesting
 * when it reads, JSON.parse does not, and what is taken in must be writable again).
 */
export function decodeEnvelopes(bytes: Uint8Array): unknown {
  if (bytes[0] !== OPEN_BRACKET) return deserialize(bytes);
  const batch = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as unknown;
  if (!Array.isArray(batch) || batch.length > JSON_MAX_ENVELOPES || !withinLimits(batch)) throw new RangeError('a JSON batch past the limits of one');
  return batch;
}

/** Whether a value JSON.parse made holds at most JSON_MAX_VALUES values, nested at most JSON_MAX_DEPTH deep (the batch and its envelopes beside). */
function withinLimits(batch: unknown[]): boolean {
  const stack: [value: unknown, depth: number][] = [[batch, 0]];
  let values = 0;
  while (stack.length) {
    const [value, depth] = stack.pop()!;
    if (depth >= 2 && ++values > JSON_MAX_VALUES) return false;
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= JSON_MAX_DEPTH) return false;
    for (const item of Array.isArray(value) ? value : Object.values(value)) stack.push([item, depth + 1]);
  }
  return true;
}
