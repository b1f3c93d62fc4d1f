/**
 * The boundary's property suite: generated values (nested objects, arrays, Maps, Sets, views over
 * shared and unshared buffers, Errors with causes, getters, proxies, symbols, cycles, repeated big
 * strings) go through the sandbox's encoder and the trusted decoder; generated and mutated texts go
 * straight to the decoder, as a subverted kernel could send them. Properties: nothing shared comes
 * out, the measured size is at least what crosses (v8.serialize, the structured clone), nothing
 * crashes but with the typed errors, and a batch's envelopes hold only what the decoder built.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { serialize } from 'node:v8';
import { isDeepStrictEqual } from 'node:util';
import { encode, encodeBatch, NotEncodable } from '../src/sandbox/encode.js';
import { decodeBatch, decodeValue, readBatch, Undecodable } from '../src/node/decode.js';
import { Boundary } from '../src/node/boundary.js';
import { ALL } from '../src/kernel/capabilities.js';

const RUNS = 1_500;

function holdsShared(value: unknown, seen = new Set<object>()): boolean {
  if (typeof value !== 'object' || value === null || seen.has(value)) return false;
  seen.add(value);
  if (value instanceof SharedArrayBuffer) return true;
  if (ArrayBuffer.isView(value)) return value.buffer instanceof SharedArrayBuffer;
  if (value instanceof Map) return [...value].some(([k, v]) => holdsShared(k, seen) || holdsShared(v, seen));
  if (value instanceof Set) return [...value].some((v) => holdsShared(v, seen));
  return Reflect.ownKeys(value).some((k) => holdsShared(Object.getOwnPropertyDescriptor(value, k)?.value, seen));
}

const big = 'B'.repeat(50_000);
const leaf = fc.oneof(
  fc.string(),
  fc.double(),
  fc.integer(),
  fc.bigInt(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.constant(-0),
  fc.constant(big),
  fc.date({ noInvalidDate: false }),
  fc.constantFrom(/a+b/gi, /x/y),
  fc.uint8Array({ maxLength: 64 }).map((a) => new Uint8Array(a)),
  fc.integer({ min: 1, max: 64 }).map((n) => new Float64Array(n)),
  fc.integer({ min: 1, max: 64 }).map((n) => new DataView(new ArrayBuffer(n * 2), n)),
  fc.integer({ min: 1, max: 64 }).map((n) => new Int32Array(new SharedArrayBuffer(n * 4))),
  fc.constant(null).map(() => new SharedArrayBuffer(8)),
  fc.constant(null).map(() => new (globalThis as any).WebAssembly.Memory({ initial: 1, maximum: 1, shared: true })),
  fc.constant(Symbol('s')),
  fc.constant(() => 1),
);
const { value: arbitraryValue } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor')), tie('value'), { maxKeys: 5 }),
    fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 3 }).map((e) => new Map(e)),
    fc.array(tie('value'), { maxLength: 3 }).map((e) => new Set(e)),
    fc.tuple(fc.string(), tie('value')).map(([m, cause]) => new Error(m, { cause })),
    tie('value').map((v) => ({
      get lazy() {
        return v;
      },
    })),
    tie('value').map((v) => new Proxy({ inside: v }, {})),
    tie('value').map((v) => {
      const o: Record<string, unknown> = { v };
      o.self = o;
      return o;
    }),
    tie('value').map((v) => Array.from({ length: 20 }, () => v)),
    fc.integer({ min: 150, max: 260 }).map((depth) => {
      let o: unknown = new Int32Array(new SharedArrayBuffer(4));
      for (let i = 0; i < depth; i++) o = { o };
      return o;
    }),
  ),
}));

function serializedSize(value: unknown): number | undefined {
  try {
    return serialize(value).length;
  } catch {
    return undefined;
  }
}

/** Which objects of a value are the same object: the walk's order, each object as new or as the index it was first met at. */
function sharing(value: unknown, seen = new Map<object, number>(), out: (number | string)[] = []): (number | string)[] {
  if (typeof value !== 'object' || value === null) return out;
  const at = seen.get(value);
  if (at !== undefined) {
    out.push(at);
    return out;
  }
  seen.set(value, seen.size);
  out.push('new');
  const items = value instanceof Map ? [...value].flat() : Array.isArray(value) ? value : Object.values(value);
  for (const item of items) sharing(item, seen, out);
  return out;
}

/** Values a thread node could send, plain or not: JSON through and through, with -0, undefined, Maps, one object met twice, cycles. */
const { value: sendable } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.constant(-0)),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('__proto__', 'n')), tie('value'), { maxKeys: 4 }),
    fc.array(fc.tuple(fc.string(), tie('value')), { maxLength: 2 }).map((e) => new Map(e)),
    tie('value').map((v) => ({ a: v, b: [v, { c: v }] })),
    tie('value').map((v) => {
      const o: Record<string, unknown> = { v };
      o.self = o;
      return o;
    }),
  ),
}));

describe('boundary property suite', () => {
  it('encode → decode gives back what structured clone would, the same objects shared, whether or not parts are written as plain JSON', () => {
    fc.assert(
      fc.property(fc.array(sendable, { maxLength: 4 }), (messages) => {
        for (const message of messages) {
          const decoded = decodeValue(encode(message)).value;
          expect(isDeepStrictEqual(decoded, structuredClone(message))).toBe(true);
          expect(sharing(decoded)).toEqual(sharing(message));
        }
        const text = encodeBatch(messages.map((m) => [0, '<a.1>', m]));
        const strict = decodeBatch(text).map((d) => (d as { fields: unknown[] }).fields);
        const read = readBatch(text);
        expect(read.length).toBe(messages.length);
        messages.forEach((message, i) => {
          for (const envelope of [strict[i], read[i]]) {
            expect(isDeepStrictEqual(envelope![2], structuredClone(message))).toBe(true);
            expect(sharing(envelope![2])).toEqual(sharing(message));
          }
        });
      }),
      { numRuns: RUNS },
    );
  });

  it('plain values cross as plain JSON, and a value written so that is met again in its envelope is written with tags', () => {
    expect(encode({ n: 1, list: [1, 'a', null, { deep: true }] })).toBe('{"n":1,"list":[1,"a",null,{"deep":true}]}');
    expect(encode([1, [2]])).toBe('["j",[1,[2]]]');
    const o = { a: 1 };
    expect(
      encodeBatch([
        [0, '<a.1>', o],
        [0, '<a.1>', o],
        [0, '<a.1>', [o, o]],
      ]),
    ).toBe('[[0,"<a.1>",{"a":1}],[0,"<a.1>",{"a":1}],[0,"<a.1>",["a",["o","a",1],["@",1]]]]');
    // a plain value beside one that is not: the plain part still crosses as JSON
    expect(encode({ p: { q: 1 }, u: undefined })).toBe('["o","p",{"q":1},"u",["u"]]');
  });

  it('encode → decode: nothing shared, measured ≥ what crosses, only typed errors', () => {
    fc.assert(
      fc.property(arbitraryValue, (value) => {
        let text: string;
        try {
          text = encode(value);
        } catch (error) {
          expect(error instanceof NotEncodable || error instanceof RangeError, String(error)).toBe(true);
          return;
        }
        const { value: decoded, bytes } = decodeValue(text);
        expect(holdsShared(decoded)).toBe(false);
        const crosses = serializedSize(decoded);
        if (crosses !== undefined) expect(bytes).toBeGreaterThanOrEqual(crosses);
      }),
      { numRuns: RUNS },
    );
  });

  it('arbitrary and mutated texts: the decoder returns plain values or throws Undecodable, never shared memory', () => {
    const valid = arbitraryValue.map((v) => {
      try {
        return encode(v);
      } catch {
        return '["u"]';
      }
    });
    const mutated = fc
      .tuple(valid, fc.nat(), fc.string({ maxLength: 4 }))
      .map(([t, at, ins]) => t.slice(0, at % (t.length + 1)) + ins + t.slice((at % (t.length + 1)) + 1));
    const crafted = fc.jsonValue().map((j) => JSON.stringify(j));
    fc.assert(
      fc.property(fc.oneof(mutated, crafted, fc.string()), (text) => {
        try {
          const { value } = decodeValue(text);
          expect(holdsShared(value)).toBe(false);
        } catch (error) {
          expect(error, String(error)).toBeInstanceOf(Undecodable);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('batches through the Boundary: admitted envelopes hold nothing shared and messages fit the limit', () => {
    const max = 4_096;
    fc.assert(
      fc.property(fc.array(arbitraryValue, { maxLength: 4 }), (messages) => {
        const denied: string[] = [];
        const boundary = new Boundary('sb', ALL, { maxMessageBytes: max }, (w) => denied.push(w));
        let text: string;
        try {
          text = encodeBatch(messages.map((m) => [0, '<host.1>', m]));
        } catch {
          return;
        }
        boundary.newSlice();
        const admitted = boundary.outbound('host', text);
        for (const e of admitted) {
          expect(holdsShared(e)).toBe(false);
          const crosses = serializedSize(e[2]);
          if (crosses !== undefined) expect(crosses).toBeLessThanOrEqual(max);
        }
        expect(admitted.length + denied.length).toBeGreaterThanOrEqual(messages.length > 0 ? 1 : 0);
      }),
      { numRuns: RUNS },
    );
  });

  it('a hand-made text cannot make shared memory or pollute a prototype', () => {
    const { value } = decodeValue(JSON.stringify(['o', '__proto__', ['o', 'polluted', 1], 'b', ['v', 'Int32Array', 'AAAAAA==']]));
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value as object)).toEqual(['__proto__', 'b']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(() => decodeValue('["v","SharedArrayBuffer","AAAA"]')).toThrow(Undecodable);
    expect(decodeBatch('[[0,"<a.1>",["v","Int32Array","AAAAAA=="]], 5]')[1]).toEqual({ error: 'a malformed signal' });
    // one object in two envelopes, and twice in one: each envelope decodes on its own, sharing kept inside it
    const o = { a: 1 };
    const [first, second] = decodeBatch(
      encodeBatch([
        [0, '<a.1>', o],
        [0, '<a.1>', { x: o, y: o }],
      ]),
    ) as { fields: any[] }[];
    expect(first!.fields[2]).toEqual({ a: 1 });
    expect(second!.fields[2]).toEqual({ x: { a: 1 }, y: { a: 1 } });
    expect(second!.fields[2].x).toBe(second!.fields[2].y);
  });
});
