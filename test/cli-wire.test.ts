/**
 * The control protocol's op list (src/wire/cli.ts): the server's check of every request, and, at
 * compile time (`npm run typecheck`), that the handler table and the client are typed by it.
 */
import { describe, expect, it } from 'vitest';
import type { Client } from '../src/cli/client.js';
import type { Handlers } from '../src/cli/handlers.js';
import { BadRequest, checkArgs, checkRequest, OPS, type ArgsOf, type ResultOf } from '../src/wire/cli.js';

function rejection(fn: () => unknown): BadRequest {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(BadRequest);
    return error as BadRequest;
  }
  throw new Error('expected a BadRequest');
}

describe('the CLI wire: one closed list of ops', () => {
  it("takes a request with exactly its op's fields, each of its type", () => {
    expect(checkRequest({ id: 1, op: 'ps', args: { node: 'a' } })).toEqual({ id: 1, op: 'ps', args: { node: 'a' } });
    expect(checkRequest({ id: 'x', op: 'ps' })).toEqual({ id: 'x', op: 'ps', args: {} });
    expect(checkArgs('migrate-all', { from: 'a', to: 'b', batch: 5, module: null })).toEqual({ from: 'a', to: 'b', batch: 5 }); // null: absent
    expect(checkArgs('send', { to: '<a.1>', message: null })).toEqual({ to: '<a.1>', message: null }); // a null message is a message
  });

  it('refuses unknown fields, wrong types, missing fields, unknown ops: a bad_request naming each', () => {
    const unknown = rejection(() => checkArgs('ps', { nod: 'a' }));
    expect(unknown.code).toBe('bad_request');
    expect(unknown.message).toBe("ps: unknown field 'nod' (ps takes node)");
    expect(rejection(() => checkArgs('info', { verbose: true })).message).toBe("info: unknown field 'verbose' (info takes no args)");
    expect(rejection(() => checkArgs('load', { node: 'a', module: 'm', path: '/x', purge: 'hard' })).message).toBe(
      "load: 'purge' must be 'kill' or 'soft', got \"hard\"",
    );
    const several = rejection(() => checkArgs('spawn', { node: 'a', fn: 3, args: {} }));
    expect(several.details.problems).toEqual([
      "'module' is required: a non-empty string",
      "'fn' must be a non-empty string, got 3",
      "'args' must be a list, got {}",
    ]);
    expect(rejection(() => checkArgs('migrate-all', { from: 'a', to: 'b', batch: 0 })).message).toContain("'batch' must be an integer > 0");
    expect(rejection(() => checkRequest({ id: 1, op: 'frob', args: {} })).message).toMatch(/^unknown op "frob" \(ops: info, nodes, ps, /);
    expect(rejection(() => checkRequest({ id: 1, op: 'ps', args: {}, extra: 1 })).message).toContain('unknown field extra');
    expect(rejection(() => checkRequest({ op: 'ps' })).message).toContain('id must be');
    expect(rejection(() => checkRequest({ id: 1, op: 'ps', args: [] })).message).toBe('ps: args must be an object');
  });

  it('types the handler table and the client by the same list', () => {
    const ops = Object.keys(OPS);
    expect(ops).toEqual([
      'info',
      'nodes',
      'ps',
      'modules',
      'names',
      'load',
      'purge',
      'soft-purge',
      'lingering',
      'upgrade',
      'migrate',
      'migrate-all',
      'spawn',
      'kill',
      'send',
      'call',
      'events',
      'releases',
      'rollback',
      'make-permanent',
      'durable',
      'durable-forget',
      'stop',
      'observe-nodes',
      'observe-ps',
      'observe-process',
      'observe-code',
      'restart-node',
    ]);
    // Compile-time checks, run by `npm run typecheck`; nothing here executes.
    const typeOnly = (_: () => void) => {};
    typeOnly(() => {
      // @ts-expect-error a table that leaves an op out does not compile
      const missing: Handlers = {} as Omit<Handlers, 'stop'>;
      // @ts-expect-error a handler returning the wrong result does not compile
      const wrong: Handlers['lingering'] = () => [1, 2];
      const client = {} as Client;
      // @ts-expect-error args of the wrong type
      void client.request('ps', { node: 3 });
      // @ts-expect-error an unknown field
      void client.request('ps', { nod: 'a' });
      // @ts-expect-error a missing required field
      void client.request('load', { node: 'a', module: 'm' });
      // @ts-expect-error an op not in the list
      void client.request('frob', {});
      const lingering: Promise<ResultOf<'lingering'>> = client.request('lingering', { node: 'a', module: 'm' });
      const args: ArgsOf<'migrate-all'> = { from: 'a', to: 'b' };
      void client.request('upgrade', { plan: { modules: [] } }, { onMessage: (m) => m.progress.done });
      void [missing, wrong, lingering, args];
    });
  });
});
