/**
 * How batches cross hosts (src/net/envelopes.ts): small batches of plain JSON data as JSON text,
 * anything else v8-serialized, and either way read back exactly as v8 would give it.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { deserialize, serialize } from 'node:v8';
import { isDeepStrictEqual } from 'node:util';
import { decodeEnvelopes, encodeEnvelopes } from '../src/net/envelopes.js';
import { Sig, type Envelope } from '../src/kernel/signals.js';

const JSON_TAG = '['.charCodeAt(0);
const V8_TAG = 0xff;

/** A one-envelope batch carrying `message`. */
const batch = (message: unknown): Envelope[] => [[Sig.Message, '<b.1>', message] as Envelope];
const viaV8 = (value: unknown): unknown => deserialize(serialize(value));
const roundTrip = (value: Envelope[]): unknown => decodeEnvelopes(encodeEnvelopes(value));

describe('encodeEnvelopes / decodeEnvelopes', () => {
  it('write a small batch of plain data as JSON text, and read it back as v8 would', () => {
    const message = { n: 1, s: 'é\u{1F600}\ud800', list: [1, 2.5, -3, null, true, 'x'], nested: { deep: [{ a: [] }] }, ['__proto__']: 1 };
    // An own "__proto__" property, as a decoder builds it: kept as one, not a prototype.
    const withProto = JSON.parse('{"__proto__": {"polluted": true}, "k": 1}') as unknown;
    for (const value of [batch(message), batch(withProto), [...batch(1), ...batch('two')]]) {
      const bytes = encodeEnvelopes(value);
      expect(bytes[0]).toBe(JSON_TAG);
      expect(isDeepStrictEqual(decodeEnvelopes(bytes), viaV8(value))).toBe(true);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('v8-serialize what JSON would change: other types, -0, NaN, undefined, holes, extra array properties, shared and cyclic objects, class instances, a larger batch', () => {
    const shared = { s: 1 };
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const extra = Object.assign([1, 2], { tag: 'kept' });
    class Point {
      constructor(readonly x: number) {}
    }
    const deep: unknown[] = [];
    let at = deep;
    for (let i = 0; i < 40; i++) at.push((at = []));
    const values: unknown[] = [
      new Map([[1, 2]]),
      new Set([1]),
      new Date(5),
      /re/g,
      10n,
      new Uint8Array([1, 2]),
      -0,
      NaN,
      Infinity,
      undefined,
      { a: undefined },
      Object.assign(new Array<number>(3), { 0: 1, 2: 3 }),
      extra,
      { a: shared, b: shared },
      cyclic,
      new Point(1),
      new Error('boom'),
      deep,
      Array.from({ length: 1_000 }, (_, i) => i),
    ];
    for (const value of values) {
      const bytes = encodeEnvelopes(batch(value));
      expect(bytes[0], String(value)).toBe(V8_TAG);
      const back = decodeEnvelopes(bytes) as Envelope[];
      expect(isDeepStrictEqual(back, viaV8(batch(value))), String(value)).toBe(true);
    }
    const [[, , both]] = roundTrip(batch({ a: shared, b: shared })) as [[number, string, { a: object; b: object }]];
    expect(both.a).toBe(both.b);
    expect(encodeEnvelopes([...batch(1), ...batch(2), ...batch(3)])[0]).toBe(V8_TAG);
  });

  it('read each property once, as v8 does; a proxy or a function fails as it does in v8', () => {
    let reads = 0;
    const getter = {
      get value() {
        reads++;
        return reads;
      },
    };
    expect(roundTrip(batch(getter))).toEqual(batch({ value: 1 }));
    expect(reads).toBe(1);
    const v8Error = (value: unknown): string => {
      try {
        serialize(value);
      } catch (error) {
        return (error as Error).message;
      }
      throw new Error('v8 took it');
    };
    for (const value of [batch(new Proxy({}, {})), batch({ f: () => 1 })]) expect(() => encodeEnvelopes(value)).toThrow(v8Error(value));
    const throwing = {
      get bad(): never {
        throw new Error('a getter that throws');
      },
    };
    expect(() => encodeEnvelopes(batch(throwing))).toThrow('a getter that throws');
  });

  it('give a buffer of its own (it may be handed to another thread)', () => {
    const bytes = encodeEnvelopes(batch('small'));
    expect(bytes.byteOffset).toBe(0);
    expect(bytes.buffer.byteLength).toBe(bytes.byteLength);
  });

  it('refuse bytes that are neither', () => {
    expect(() => decodeEnvelopes(new TextEncoder().encode('[1, 2'))).toThrow(SyntaxError);
    expect(() => decodeEnvelopes(new Uint8Array([0xff, 0x0f, 0x99]))).toThrow();
  });

  it('read back any generated value as v8 would (property)', () => {
    const leaf = fc.oneof(
      fc.string(),
      fc.double(),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.constant(-0),
      fc.bigInt(),
      fc.date(),
    );
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('object')),
      array: fc.array(tie('node'), { maxLength: 5 }),
      object: fc.dictionary(fc.string(), tie('node'), { maxKeys: 5 }),
    })).node;
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 3 }), (messages) => {
        const envelopes = messages.map((m) => batch(m)[0]!);
        expect(isDeepStrictEqual(roundTrip(envelopes), viaV8(envelopes))).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });
});
