/**
 * assertCloneable (the send-time check for messages to other nodes): class instances are refused,
 * since structured clone would drop their class, methods and #private fields.
 */
import { describe, expect, it } from 'vitest';
import { assertCloneable } from '../src/kernel/values.js';
import { NotCloneable } from '../src/errors.js';

class Account {
  #balance = 10;
  get balance(): number {
    return this.#balance;
  }
}

describe('assertCloneable', () => {
  it('refuses class instances (with #private fields or not), anywhere in a message', () => {
    expect(() => assertCloneable(new Account())).toThrow(NotCloneable);
    expect(() => assertCloneable(new Account())).toThrow(
      /instance of class Account.*class instances lose their class and #private fields across nodes; send plain data/,
    );
    expect(() => assertCloneable({ a: [1, { acct: new Account() }] })).toThrow(/message\.a\[1\]\.acct is an instance of class Account/);
    expect(() => assertCloneable(new Map([['k', new (class {})()]]))).toThrow(NotCloneable);
  });

  it('accepts plain data and cloneable built-ins', () => {
    class MyError extends Error {}
    const ok: unknown[] = [
      { a: 1, b: [1, 'x', null] },
      Object.create(null),
      [1, 2],
      new Map([[1, { x: 1 }]]),
      new Set([1]),
      new Date(0),
      /x/g,
      new Error('e'),
      new TypeError('t'),
      new MyError('m'),
      new ArrayBuffer(4),
      new Uint8Array(4),
      new DataView(new ArrayBuffer(2)),
    ];
    for (const value of ok) expect(() => assertCloneable(value)).not.toThrow();
  });
});
