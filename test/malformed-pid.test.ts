/**
 * One rule for a malformed pid given to the host API: BadArgument, from every call that takes a
 * pid (it used to be NoProcess from one call, undefined from another, UnknownNode from a third).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BadArgument, System } from '../src/index.js';
import type { Pid } from '../src/kernel/pid.js';

let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

const counter = `
  export function init() { return 0; }
  export function handleCall(req: any, from: any, n: number) { return { reply: n, state: n }; }
`;

const malformed = ['nope', '<a.x>', '<a>', '<a.1.-1>', '<zz.1.2.3>', '', 42, null, undefined] as unknown as Pid[];

describe('a malformed pid', () => {
  it('is BadArgument from every host call taking a pid', async () => {
    system = await System.start({ nodes: [{ name: 'a', modules: { counter } }] });
    const s = system;
    const a = s.node('a');
    await a.startServer('counter'); // a live node with a process: the calls get past the node
    const calls: [string, (pid: Pid) => unknown][] = [
      ['node.exit', (pid) => a.exit(pid, 'kill')],
      ['node.processInfo', (pid) => a.processInfo(pid)],
      ['node.suspend', (pid) => a.suspend(pid)],
      ['node.resume', (pid) => a.resume(pid)],
      ['node.getState', (pid) => a.getState(pid)],
      ['node.replaceState', (pid) => a.replaceState(pid, 1)],
      ['node.changeCode', (pid) => a.changeCode(pid, 'counter')],
      ['node.checkProcessCode', (pid) => a.checkProcessCode(pid, 'counter')],
      ['system.send', (pid) => s.send(pid, 'hi')],
      ['system.call', (pid) => s.call(pid, 'get', 200)],
      ['system.exit', (pid) => s.exit(pid, 'kill')],
      ['system.process', (pid) => s.process(pid)],
      ['system.locate', (pid) => s.locate(pid)],
      ['system.migrate', (pid) => s.migrate(pid, 'a')],
    ];
    const outcomes: string[] = [];
    for (const [name, call] of calls) {
      for (const pid of malformed) {
        let outcome: string;
        try {
          const result = call(pid);
          if (result instanceof Promise) await result;
          outcome = 'no error';
        } catch (error) {
          outcome = error instanceof BadArgument ? 'BadArgument' : `${(error as Error).name}: ${(error as Error).message}`;
        }
        if (outcome !== 'BadArgument') outcomes.push(`${name}(${JSON.stringify(pid)}): ${outcome}`);
      }
    }
    expect(outcomes).toEqual([]);
  });

  it('a well-formed pid is still accepted', async () => {
    system = await System.start({ nodes: [{ name: 'a', modules: { counter } }] });
    const pid = await system.node('a').startServer('counter');
    expect(await system.call(pid, 'get')).toBe(0);
    expect(system.locate(pid).node).toBe('a');
    expect(await system.node('a').processInfo('<a.999>' as Pid)).toBeUndefined();
  });
});
