/**
 * Checkpoints at the isolate boundary, as a kernel subverted by its own module code would send
 * them (straight onto the wire, past the kernel's checks): the trusted half admits a checkpoint
 * only for a key the node's `durable` capability grants, from one of its own processes, within
 * `limits.durableBytes` — whatever `maxMessageBytes` says, since a checkpoint is measured by its
 * own limit.
 */
import { describe, expect, it } from 'vitest';
import { encodeBatch } from '../src/sandbox/encode.js';
import { Boundary } from '../src/node/boundary.js';
import { ALL } from '../src/kernel/capabilities.js';

const checkpoint = (fields: Record<string, unknown>) => ({
  $service: 'checkpoint',
  ref: '',
  from: '<sb.1>',
  ack: false,
  key: 'c',
  module: 'm',
  vsn: 1,
  state: 0,
  ...fields,
});

function send(boundary: Boundary, message: unknown) {
  boundary.newSlice();
  return boundary.outbound('host', encodeBatch([[0, '<host.0>', message]]));
}

describe('checkpoints at the isolate boundary', () => {
  const make = () => {
    const denied: string[] = [];
    const boundary = new Boundary('sb', { ...ALL, durable: ['c'] }, { maxMessageBytes: 1_000, durableBytes: 50_000 }, (w) => denied.push(w));
    return { boundary, denied };
  };

  it('a granted key from its own process, within durableBytes (over maxMessageBytes), is admitted', () => {
    const { boundary, denied } = make();
    expect(send(boundary, checkpoint({ state: 'x'.repeat(10_000) }))).toHaveLength(1);
    expect(denied).toEqual([]);
  });

  it('a key outside the capability, a forged sender, or a state over durableBytes is refused', () => {
    const { boundary, denied } = make();
    expect(send(boundary, checkpoint({ key: 'other' }))).toHaveLength(0);
    expect(send(boundary, checkpoint({ from: '<victim.1>' }))).toHaveLength(0);
    expect(send(boundary, checkpoint({ state: 'x'.repeat(40_000) }))).toHaveLength(0);
    expect(denied).toEqual([
      expect.stringMatching(/checkpoint of durable state other/),
      expect.stringMatching(/service request for another node/),
      expect.stringMatching(/checkpoint over the durableBytes limit/),
    ]);
  });

  it('an isolate node granted nothing (its default) gets no checkpoint through', () => {
    const denied: string[] = [];
    const boundary = new Boundary('sb', { ...ALL, durable: [] }, {}, (w) => denied.push(w));
    expect(send(boundary, checkpoint({}))).toHaveLength(0);
    expect(denied).toHaveLength(1);
  });
});
