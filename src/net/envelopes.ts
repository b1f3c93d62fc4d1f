/**
 * How a batch of envelopes is written as bytes to cross hosts (runs on the main thread and on node
 * threads, wherever a batch is serialized or read).
 *
 * v8 serialization keeps every structured-clone type, but each call makes a serializer object
 * of its own: ~3-5 µs to write and ~1.5-2.5 µs to read even one small envelope, on each side of
 * each hop, where a call's round trip crosses two. A small batch of plain JSON data (what most
 * calls, replies and messages are) is written as JSON text instead, ~5x cheaper each way, and
 * read back as v8 would give it: only what JSON keeps exactly is written so — strings, booleans,
 * null, finite numbers other than -0, and arrays and plain objects of those, each object once (no
 * shared or cyclic references), no proxies, no array with holes or extra properties — and each
 * property is read once, as v8 would read it. Anything else, or a large batch (where v8 is
 * faster per envelope), is v8-serialized. A reader tells them apart by the first byte: v8 writes
 * its version tag (0xFF) first, JSON text of an array begins with '['.
 */
import { deserialize, serialize } from 'node:v8';
import { types } from 'node:util';
import type { Envelope } from '../kernel/signals.js';

/** Batches of at most this many envelopes may be written as JSON (past it, v8 is faster per envelope). */
const JSON_MAX_ENVELOPES = 2;
/** Values (of every depth) a JSON batch may hold, and how deep: past either, v8. */
const JSON_MAX_VALUES = 256;
const JSON_MAX_DEPTH = 16;
const OPEN_BRACKET = 0x5b;

const { isProxy } = types;
const ObjectPrototype = Object.prototype;
const ArrayPrototype = Array.prototype;
const quote = JSON.stringify as (text: string) => string;
/** Not `Buffer.from`: its small buffers share a pool, and a batch's buffer may be handed to another thread. */
const utf8 = new TextEncoder();

/** Thrown inside the writer when a value is not plain JSON data: the batch goes to v8 instead. */
const NOT_JSON = Symbol('not JSON');

/** A JSON writer for one batch: the objects it has written (none may come twice) and how many values. */
class JsonWriter {
  private readonly seen: object[] = [];
  private values = 0;

  write(value: unknown, depth: number): string {
    if (++this.values > JSON_MAX_VALUES) throw NOT_JSON;
    switch (typeof value) {
      case 'string':
        return quote(value);
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

  private object(value: object, depth: number): string {
    if (depth >= JSON_MAX_DEPTH || this.seen.includes(value) || isProxy(value)) throw NOT_JSON;
    this.seen.push(value);
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto === ArrayPrototype && Array.isArray(value)) {
      const items = value as unknown[];
      const length = items.length;
      let text = '[';
      for (let i = 0; i < length; i++) {
        // A hole reads as undefined, which is refused (v8 keeps holes, JSON does not).
        text += (i ? ',' : '') + this.write(items[i], depth + 1);
      }
      // Properties beside the indexes are kept by v8 only.
      if (Object.keys(items).length !== length) throw NOT_JSON;
      return `${text}]`;
    }
    if (proto !== ObjectPrototype && proto !== null) throw NOT_JSON;
    let text = '{';
    let first = true;
    for (const key of Object.keys(value)) {
      text += `${first ? '' : ','}${quote(key)}:${this.write((value as Record<string, unknown>)[key], depth + 1)}`;
      first = false;
    }
    return `${text}}`;
  }
}

/** The batch as bytes: JSON text when small and plain, else v8-serialized. Throws as v8 does on what cannot be cloned. */
export function encodeEnvelopes(batch: readonly Envelope[]): Uint8Array<ArrayBuffer> {
  if (batch.length <= JSON_MAX_ENVELOPES) {
    try {
      return utf8.encode(new JsonWriter().write(batch, 0));
    } catch (error) {
      if (error !== NOT_JSON) throw error;
    }
  }
  return serialize(batch) as Uint8Array<ArrayBuffer>;
}

/** What `encodeEnvelopes` wrote (or any v8-serialized value). Throws on bytes that are neither. */
export function decodeEnvelopes(bytes: Uint8Array): unknown {
  if (bytes[0] !== OPEN_BRACKET) return deserialize(bytes);
  return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as unknown;
}
