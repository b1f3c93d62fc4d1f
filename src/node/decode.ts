/**
 * The trusted half's reading of what leaves a sandbox (the encoding is described in
 * src/sandbox/encode.ts). Input is one string, from untrusted code: it is parsed with JSON.parse and
 * walked strictly, building fresh values of this realm with defineProperty, never assignment, so a
 * `__proto__` key is an own property and no setter runs. Shared memory cannot be produced (no tag
 * makes a SharedArrayBuffer or a WebAssembly.Memory); nothing deeper than MAX_DEPTH is built.
 * What is written as plain JSON is taken as JSON.parse made it (fresh objects of this realm, own
 * data properties, `__proto__` included): walked to be measured and bounded, not rebuilt.
 *
 * While it builds, it measures: `bytes` is at least what the value costs to cross a thread
 * (structured clone: strings 2 bytes a character, buffers their full length, every property name),
 * so a size limit checked on it holds for what really crosses.
 */
import { MAX_DEPTH } from '../sandbox/encode.js';

export class Undecodable extends Error {}

const VIEWS: Record<string, { new (buffer: ArrayBuffer): ArrayBufferView; BYTES_PER_ELEMENT: number }> = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
};
const ERRORS: Record<string, ErrorConstructor> = { Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const NUMBERS: Record<string, number> = { NaN, Infinity, '-Infinity': -Infinity, '-0': -0 };
const own = (value: unknown) => ({ value, writable: true, enumerable: true, configurable: true });
const hidden = (value: unknown) => ({ value, writable: true, enumerable: false, configurable: true });

/** Cost of a string crossing: UTF-16, plus its header. */
const stringBytes = (s: string): number => 8 + 2 * s.length;

/** What a value costs to cross besides its contents (the serializer's header). */
const HEADER = 16;

class Reader {
  bytes = HEADER;
  private objects: object[] = [];

  /** `measure`: count what each value costs and bound the depth of values written as JSON too (off only where nothing is limited). */
  constructor(private readonly measure = true) {}

  /** Starts a new value (an envelope): its own numbering, its own count. */
  reset(): void {
    this.bytes = HEADER;
    if (this.objects.length) this.objects = [];
  }

  value(x: unknown, depth: number): unknown {
    switch (typeof x) {
      case 'string':
        this.bytes += stringBytes(x);
        return x;
      case 'number':
        this.bytes += 10;
        return x;
      case 'boolean':
        this.bytes += 2;
        return x;
      case 'object':
        if (x === null) {
          this.bytes += 2;
          return null;
        }
        if (!Array.isArray(x)) return this.json(x, depth);
        if (x.length >= 1) return this.tagged(x, depth);
    }
    throw new Undecodable('not a value of the encoding');
  }

  /** A value written as JSON, taken as JSON.parse made it (fresh, plain, own properties only): measured, not rebuilt. */
  private json(x: unknown, depth: number): unknown {
    if (this.measure) this.measureJson(x, depth);
    return x;
  }

  private measureJson(x: unknown, depth: number): void {
    switch (typeof x) {
      case 'string':
        this.bytes += stringBytes(x);
        return;
      case 'number':
        this.bytes += 10;
        return;
      case 'boolean':
        this.bytes += 2;
        return;
    }
    if (x === null) {
      this.bytes += 2;
      return;
    }
    if (depth > MAX_DEPTH) throw new Undecodable(`nested deeper than ${MAX_DEPTH} levels`);
    this.bytes += 16;
    const d = depth + 1;
    if (Array.isArray(x)) {
      for (let i = 0; i < x.length; i++) this.measureJson(x[i], d);
      return;
    }
    const record = x as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      this.bytes += stringBytes(key);
      this.measureJson(record[key], d);
    }
  }

  private tagged(x: unknown[], depth: number): unknown {
    if (depth > MAX_DEPTH) throw new Undecodable(`nested deeper than ${MAX_DEPTH} levels`);
    const d = depth + 1;
    const tag = x[0];
    switch (tag) {
      case 'u':
        this.bytes += 2;
        return undefined;
      case 'n': {
        if (x.length !== 2 || typeof x[1] !== 'string' || !Object.prototype.hasOwnProperty.call(NUMBERS, x[1])) break;
        this.bytes += 10;
        return NUMBERS[x[1]];
      }
      case 'b': {
        if (x.length !== 2 || typeof x[1] !== 'string' || !/^-?\d{1,100000}$/.test(x[1])) break;
        this.bytes += 16 + x[1].length;
        return BigInt(x[1]);
      }
      case 'j': {
        if (x.length !== 2 || !Array.isArray(x[1])) break;
        return this.json(x[1], d);
      }
      case '@': {
        const n = x[1];
        if (x.length !== 2 || typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n >= this.objects.length) break;
        this.bytes += 8;
        return this.objects[n];
      }
      case 'a': {
        const out: unknown[] = [];
        this.keep(out, 16);
        for (let i = 1; i < x.length; i++) out.push(this.value(x[i], d));
        return out;
      }
      case 'o': {
        if (x.length % 2 !== 1) break;
        const out: Record<string, unknown> = {};
        this.keep(out, 16);
        for (let i = 1; i < x.length; i += 2) {
          const key = x[i];
          if (typeof key !== 'string') throw new Undecodable('a property name that is not a string');
          this.bytes += stringBytes(key);
          Object.defineProperty(out, key, own(this.value(x[i + 1], d)));
        }
        return out;
      }
      case 'm': {
        if (x.length % 2 !== 1) break;
        const out = new Map<unknown, unknown>();
        this.keep(out, 16);
        for (let i = 1; i < x.length; i += 2) out.set(this.value(x[i], d), this.value(x[i + 1], d));
        return out;
      }
      case 's': {
        const out = new Set<unknown>();
        this.keep(out, 16);
        for (let i = 1; i < x.length; i++) out.add(this.value(x[i], d));
        return out;
      }
      case 'd': {
        if (x.length !== 2) break;
        const time = this.value(x[1], d);
        if (typeof time !== 'number') break;
        return this.keep(new Date(time), 16);
      }
      case 'r': {
        if (x.length !== 3 || typeof x[1] !== 'string' || typeof x[2] !== 'string') break;
        let out: RegExp;
        try {
          out = new RegExp(x[1], x[2]);
        } catch {
          break;
        }
        return this.keep(out, 16 + stringBytes(x[1]) + x[2].length);
      }
      case 'B': {
        if (x.length !== 2) break;
        return this.keep(this.buffer(x[1]), 16);
      }
      case 'v': {
        if (x.length !== 3 || typeof x[1] !== 'string') break;
        const buffer = this.buffer(x[2]);
        if (x[1] === 'DataView') return this.keep(new DataView(buffer), 32);
        const View = Object.prototype.hasOwnProperty.call(VIEWS, x[1]) ? VIEWS[x[1]] : undefined;
        if (!View || buffer.byteLength % View.BYTES_PER_ELEMENT !== 0) break;
        return this.keep(new View(buffer), 32);
      }
      case 'e': {
        const [, name, message, stack, hasCause] = x;
        if (
          x.length !== 6 ||
          typeof name !== 'string' ||
          typeof message !== 'string' ||
          (stack !== null && typeof stack !== 'string') ||
          typeof hasCause !== 'boolean'
        )
          break;
        const Ctor = Object.prototype.hasOwnProperty.call(ERRORS, name) ? ERRORS[name]! : Error;
        const out = new Ctor();
        this.keep(out, 16 + stringBytes(name) + stringBytes(message) + (stack === null ? 0 : stringBytes(stack)));
        Object.defineProperty(out, 'message', hidden(message));
        if (out.name !== name) Object.defineProperty(out, 'name', hidden(name));
        if (stack === null) delete out.stack;
        else Object.defineProperty(out, 'stack', hidden(stack));
        if (hasCause) Object.defineProperty(out, 'cause', hidden(this.value(x[5], d)));
        return out;
      }
    }
    throw new Undecodable(`a malformed ${typeof tag === 'string' ? `'${tag.slice(0, 8)}'` : 'tagged'} value`);
  }

  private buffer(text: unknown): ArrayBuffer {
    if (typeof text !== 'string' || !BASE64.test(text)) throw new Undecodable('malformed bytes');
    const bytes = Buffer.from(text, 'base64');
    // Never the Buffer's own memory (small ones share a pool): a buffer of exactly these bytes.
    const out = new ArrayBuffer(bytes.length);
    new Uint8Array(out).set(bytes);
    this.bytes += bytes.length;
    return out;
  }

  private keep<T extends object>(object: T, bytes: number): T {
    this.objects.push(object);
    this.bytes += bytes;
    return object;
  }
}

function parse(text: unknown): unknown {
  if (typeof text !== 'string') throw new Undecodable('not a string');
  try {
    return JSON.parse(text);
  } catch {
    throw new Undecodable('not JSON');
  }
}

/** One value (a control result, an event) and what it measures. */
export function decodeValue(text: unknown): { value: unknown; bytes: number } {
  const reader = new Reader();
  const value = reader.value(parse(text), 0);
  return { value, bytes: reader.bytes };
}

/**
 * A batch from a peer's trusted half (its runtime encoded it), read where nothing is limited (in the
 * receiving isolate, or before the receiver measures it): values written as JSON are taken as
 * parsed, not walked. An envelope that does not decode is dropped.
 */
export function readBatch(text: unknown): unknown[][] {
  const batch = parse(text);
  if (!Array.isArray(batch)) throw new Undecodable('a batch that is not a list');
  const out: unknown[][] = [];
  const reader = new Reader(false);
  for (const raw of batch as unknown[]) {
    if (!Array.isArray(raw)) continue;
    try {
      reader.reset();
      for (let i = 0; i < raw.length; i++) {
        const field: unknown = raw[i];
        if (typeof field === 'object' && field !== null) raw[i] = reader.value(field, 0);
      }
      out.push(raw);
    } catch {
      // dropped: it was not written by a trusted encoder
    }
  }
  return out;
}

/** A decoded envelope, with the bytes of its payload (the third field on), or why it was refused. */
export type DecodedEnvelope = { fields: unknown[]; bytes: number } | { error: string };

/** An outbound batch: each envelope decoded on its own (a malformed one costs only itself). */
export function decodeBatch(text: unknown): DecodedEnvelope[] {
  const batch = parse(text);
  if (!Array.isArray(batch)) throw new Undecodable('a batch that is not a list');
  const out: DecodedEnvelope[] = [];
  const reader = new Reader();
  for (const raw of batch as unknown[]) {
    if (!Array.isArray(raw)) {
      out.push({ error: 'a malformed signal' });
      continue;
    }
    try {
      reader.reset();
      const fields: unknown[] = [];
      for (let i = 0; i < raw.length; i++) {
        if (i === 2) reader.bytes = HEADER;
        fields.push(reader.value(raw[i], 0));
      }
      out.push({ fields, bytes: reader.bytes });
    } catch (error) {
      out.push({ error: `an undecodable signal (${(error as Error).message})` });
    }
  }
  return out;
}
