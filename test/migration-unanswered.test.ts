/**
 * A move into a node of this host whose migrate-in outlasts the node's control deadline: the node
 * is ended as unresponsive (its copies with it) and restarted; the driver's question of which pids
 * arrived waits out the restart and hears none, so the process resumes on its node, the only one
 * with its pid. (Across hosts, where the target runs on: test/cluster-unanswered.test.ts.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { waitEvent } from './helpers/events.js';
import { System } from '../src/index.js';

let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

const counter = (vsn: number, busyMs = 0): string => `
  export const vsn = ${vsn};
  export function init(n: number) { return { n }; }
  export function handleCall(req: any, _from: unknown, s: any) { return { reply: s.n, state: s }; }
  export function handleCast(_m: any, s: any) { return { noreply: { n: s.n + 1 } }; }
  export function handleInfo(_m: any, s: any) { return { noreply: s }; }
  export function codeChange(_from: unknown, s: any) {
    const until = Date.now() + ${busyMs};
    while (Date.now() < until);
    return { ...s, converted: true };
  }
`;

describe('a move whose target node stops answering during migrate-in', () => {
  it('fails with a typed error, and the process runs on at its node only, with every cast sent meanwhile', async () => {
    system = await System.start({
      nodes: [
        { name: 'a', modules: { counter: counter(1) } },
        { name: 'b', unresponsiveMs: 300, modules: { counter: counter(2, 1_500) } },
      ],
    });
    const s = system;
    const restarted = waitEvent(s, 'node_restarted', (e) => e.node === 'b');
    const pid = await s.node('a').startServer('counter', [0]);
    const moving = s.migrate(pid, 'b', { timeoutMs: 5_000 }).then(
      () => null,
      (e: { code?: string }) => e.code,
    );
    let sent = 0;
    let done = false;
    void moving.then(() => (done = true));
    while (!done) {
      s.cast(pid, 'inc');
      sent++;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(['timeout', 'node_down']).toContain(await moving);
    await restarted;
    expect(await s.node('b').processInfo(pid)).toBeUndefined();
    expect(await s.node('a').processInfo(pid)).toMatchObject({ pid });
    expect(s.locate(pid)).toMatchObject({ node: 'a', moves: 0 });
    expect(await s.call(pid, 'get')).toBe(sent);
  }, 30_000);
});
