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
    // What they are inside, not their prototype, decides: an array or a Map whose prototype was changed is not plain.
    values.push(
      Object.setPrototypeOf([1, 2], Object.prototype),
      Object.setPrototypeOf([1, 2], null),
      Object.setPrototypeOf(new Map([[1, 2]]), Object.prototype),
      Object.setPrototypeOf(new Date(5), null),
      Object.setPrototypeOf(new String('ab'), null),
      Object.setPrototypeOf(new Error('boom'), Object.prototype),
      Object.setPrototypeOf(/x/g, null),
      Object.defineProperty(Object.assign([1, 2], { x: 5 }), 1, { enumerable: false }),
      'long text '.repeat(2_000),
    );
    for (const value of values) {
      const bytes = encodeEnvelopes(batch(value));
      expect(bytes[0], `value ${values.indexOf(value)}`).toBe(V8_TAG);
      const back = decodeEnvelopes(bytes) as Envelope[];
      expect(isDeepStrictEqual(back, viaV8(batch(value))), `value ${values.indexOf(value)}`).toBe(true);
    }
    const [[, , both]] = roundTrip(batch({ a: shared, b: shared })) as [[number, string, { a: object; b: object }]];
    expect(both.a).toBe(both.b);
    expect(encodeEnvelopes([...batch(1), ...batch(2), ...batch(3)])[0]).toBe(V8_TAG);
  });

  it('call no getter of their own (v8 reads each once); a proxy, an arguments object or a function fails as it does in v8', () => {
    let reads = 0;
    const getter = {
      get value() {
        reads++;
        return reads;
      },
    };
    expect(roundTrip(batch(getter))).toEqual(batch({ value: 1 }));
    expect(reads).toBe(1);
    // Also when the JSON writer gives up after the getter (undefined further on), and on an array's index.
    reads = 0;
    const both = Object.defineProperties({}, { value: Object.getOwnPropertyDescriptor(getter, 'value')!, after: { value: undefined, enumerable: true } });
    reads = 0;
    expect(roundTrip(batch(both))).toEqual(viaV8(batch({ value: 1, after: undefined })));
    expect(reads).toBe(1);
    const indexed = Object.defineProperty([0], 0, { get: () => ++reads, enumerable: true });
    reads = 0;
    expect(roundTrip(batch(indexed))).toEqual(batch([1]));
    expect(reads).toBe(1);
    const v8Error = (value: unknown): string => {
      try {
        serialize(value);
      } catch (error) {
        return (error as Error).message;
      }
      throw new Error('v8 took it');
    };
    const args = (function (..._: number[]) {
      // eslint-disable-next-line prefer-rest-params
      return arguments;
    })(1, 2);
    const weird = [
      new Proxy({}, {}),
      new Proxy([1], {}),
      args,
      { f: () => 1 },
      Object.setPrototypeOf(new Uint8Array([1]), null),
      Object.setPrototypeOf(new WeakMap(), null),
    ];
    for (const value of weird.map((w) => batch(w))) expect(() => encodeEnvelopes(value)).toThrow(v8Error(value));
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

  it('refuse bytes that are neither, and JSON text past what a writer writes (another host may send anything)', () => {
    const text = (json: string): Uint8Array => new TextEncoder().encode(json);
    expect(() => decodeEnvelopes(text('[1, 2'))).toThrow(SyntaxError);
    // Nested past the writer's depth: v8 refuses deep nesting when it reads, and so must this.
    expect(() => decodeEnvelopes(text(`[[1,"<b.1>",${'['.repeat(100_000)}${']'.repeat(100_000)}]]`))).toThrow(/past the limits/);
    expect(() => decodeEnvelopes(text(`[[1,"<b.1>",[${Array.from({ length: 300 }, (_, i) => i).join(',')}]]]`))).toThrow(/past the limits/);
    expect(() => decodeEnvelopes(text('[[1,"<b.1>",1],[1,"<b.1>",2],[1,"<b.1>",3]]'))).toThrow(/past the limits/);
    expect(() => decodeEnvelopes(text('{"not":"a batch"}'))).toThrow();
    expect(decodeEnvelopes(encodeEnvelopes(batch({ deep: [[[[[[[[[[1]]]]]]]]]] })))).toEqual(batch({ deep: [[[[[[[[[[1]]]]]]]]]] }));
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
      // An invalid Date never equals itself under isDeepStrictEqual (it compares getTime()), whatever the path.
      fc.date({ noInvalidDate: true }),
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
