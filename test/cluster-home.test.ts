// A home node of this host and the moves and ends other hosts tell (src/host/node-hub.ts, the
// ClusterHost it gives the cluster), on stand-ins for the nodes and the router: forwards restored
// after a heal go in one control call per home node, and an end heard stops the home forwarding
// (the end's own Gone may have passed the home before the restored forward).
import { describe, expect, it } from 'vitest';
import { NodeHub, type HubSystem } from '../src/host/node-hub.js';
import { Migrations } from '../src/host/migration.js';
import { Events } from '../src/host/events.js';
import { Sig } from '../src/kernel/signals.js';
import type { Pid } from '../src/kernel/pid.js';

function fake() {
  const calls: [string, unknown[]][] = [];
  const routed: [string, unknown][] = [];
  const events = new Events();
  const home = { name: 'a1', status: 'running', supervision: { callNow: (op: string, ...args: unknown[]) => (calls.push([op, args]), Promise.resolve()) } };
  const handles = new Map([['a1', home]]);
  const migrations = new Migrations(() => {
    throw new Error('no driving here');
  }, events);
  const system = {
    events,
    router: { route: (node: string, envelopes: unknown) => routed.push([node, envelopes]) },
    migrations,
    handles,
    durable: () => undefined,
    cluster: () => undefined,
    stopped: () => false,
    denseThreads: () => undefined,
  } as unknown as HubSystem;
  return { host: new NodeHub(system).clusterHost(), calls, routed };
}

const P = '<a1.1.7>' as Pid;
const Q = '<a1.1.8>' as Pid;
const at = (pid: Pid, node: string) => ({ pid, node, home: 'a1', moves: 1, path: ['a1', node] });
const task = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("a home node's forwards and the moves other hosts tell", () => {
  it('forwards restored for many processes in one task go in one control call to their home', async () => {
    const { host, calls } = fake();
    expect(host.moved(at(P, 'b1'), 'B')).toBe(true);
    expect(host.moved(at(Q, 'c1'), 'C')).toBe(true);
    await task();
    expect(calls).toEqual([
      [
        'restoreForwards',
        [
          [
            [P, 'b1'],
            [Q, 'c1'],
          ],
        ],
      ],
    ]);
  });

  it('an end heard for a process homed here stops the home forwarding to it, whether its forward was restored or still waits to be', async () => {
    const { host, calls, routed } = fake();
    host.moved(at(P, 'b1'), 'B');
    expect(host.ended({ pid: P, node: 'b1', moves: 1 })).toBe(true);
    await task();
    expect(calls).toEqual([]);
    expect(routed).toEqual([['a1', [[Sig.Gone, P]]]]);
    // Restored first (its call left), then the end: the Gone follows it to the home.
    host.moved(at(Q, 'c1'), 'C');
    await task();
    expect(host.ended({ pid: Q, node: 'c1', moves: 1 })).toBe(true);
    expect(calls).toEqual([['restoreForwards', [[[Q, 'c1']]]]]);
    expect(routed.at(-1)).toEqual(['a1', [[Sig.Gone, Q]]]);
  });
});
