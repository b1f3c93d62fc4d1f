/**
 * Upgrade plans across hosts (issue #17): a plan run on one host covers every host's nodes, host
 * by host with the canary's host first, each remote node's transaction run by its own host; a
 * canary that fails rolls itself back and stops the plan, and the report lists every node with
 * its host and outcome (skipped ones included, so it is not ok). Hosts are separate processes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from './helpers/nats-server.js';
import { HostProcess } from './helpers/nats-hosts.js';

let nats: NatsServer;
const hosts: HostProcess[] = [];

beforeAll(async () => {
  nats = await NatsServer.start();
}, 30_000);
afterAll(async () => {
  await Promise.all(hosts.map((h) => h.stop()));
  await nats?.stop();
}, 30_000);

/** A server module answering its version; `breaks` makes its codeChange throw (the upgrade rolls back). */
const version = (vsn: number, breaks = false) => `
  export const vsn = ${vsn};
  export function init() { return { calls: 0 }; }
  export function handleCall(_r: unknown, _f: unknown, s: any) { return { reply: 'v${vsn}', state: s }; }
  export function handleCast(_m: unknown, s: any) { return { noreply: s }; }
  export function codeChange(_old: unknown, s: any) { ${breaks ? "throw new Error('v" + vsn + " refuses the old state');" : 'return s;'} }
`;

interface Outcome {
  node: string;
  host?: string;
  status: string;
}

describe('upgrade plans across hosts', () => {
  it('walks host by host, canary host first; a failing canary rolls back and stops the plan, the report naming every node and host', async () => {
    const options = { servers: nats.url, cluster: 'up', heartbeatMs: 200, deadAfterMs: 2_000 };
    const layout: Record<string, string[]> = { A: ['a1'], B: ['b1', 'b2'], C: ['c1'] };
    const started = await Promise.all(
      Object.entries(layout).map(([name, nodes]) =>
        HostProcess.start(
          name,
          options,
          nodes.map((node) => ({ name: node, modules: { ver: { code: version(1) } } })),
        ),
      ),
    );
    hosts.push(...started);
    const [a, b, c] = started as [HostProcess, HostProcess, HostProcess];
    await a.until('every node', async () => (await a.eval<string>('return system.nodes().map((n) => n.name).sort().join()')) === 'a1,b1,b2,c1');
    const nodes = ['a1', 'b1', 'b2', 'c1'];
    const servers: Record<string, string> = {};
    for (const node of nodes) servers[node] = await a.eval<string>('return system.node(args[0]).startServer("ver", [])', node);
    const versions = () => Promise.all(nodes.map((node) => c.eval<string>('return system.call(args[0], "x")', servers[node])));
    expect(await versions()).toEqual(['v1', 'v1', 'v1', 'v1']);

    // v2 from A, canary b1 on host B: b1, then B's other node, then the other hosts.
    const up = await a.eval<{ ok: boolean; nodes: Outcome[] }>(
      'return system.upgrade({ modules: [{ module: "ver", source: { code: args[0] } }], canary: "b1" })',
      version(2),
    );
    expect(up.ok).toBe(true);
    expect(up.nodes.slice(0, 2).map((n) => [n.host, n.node, n.status])).toEqual([
      ['B', 'b1', 'upgraded'],
      ['B', 'b2', 'upgraded'],
    ]);
    expect(up.nodes.map((n) => [n.host, n.node, n.status]).sort()).toEqual([
      ['A', 'a1', 'upgraded'],
      ['B', 'b1', 'upgraded'],
      ['B', 'b2', 'upgraded'],
      ['C', 'c1', 'upgraded'],
    ]);
    expect(await versions()).toEqual(['v2', 'v2', 'v2', 'v2']);
    // The owning hosts recorded it in their nodes' releases: a restart of b2 (on B) comes back on v2.
    await c.eval('await system.node("b2").restart()');
    servers.b2 = await b.eval<string>('return system.node("b2").startServer("ver", [])');
    expect(await b.eval('return system.call(args[0], "x")', servers.b2)).toBe('v2');

    // v3's codeChange throws: the canary c1 (host C) rolls back, the plan stops there, even with continueOnError.
    const failed = await b.eval<{ ok: boolean; nodes: (Outcome & { reason?: string })[] }>(
      'return system.upgrade({ modules: [{ module: "ver", source: { code: args[0] } }], canary: "c1", continueOnError: true })',
      version(3, true),
    );
    expect(failed.ok).toBe(false);
    expect(failed.nodes[0]).toMatchObject({ host: 'C', node: 'c1', status: 'rolled_back' });
    expect(
      failed.nodes
        .slice(1)
        .map((n) => [n.host, n.node, n.status])
        .sort(),
    ).toEqual([
      ['A', 'a1', 'skipped'],
      ['B', 'b1', 'skipped'],
      ['B', 'b2', 'skipped'],
    ]);
    for (const n of failed.nodes.slice(1)) expect(n.reason).toMatch(/stopped after node 'c1' failed/);
    expect(await versions()).toEqual(['v2', 'v2', 'v2', 'v2']);
    // Dry run from C: every host's node planned, with its host.
    const dry = await c.eval<{ ok: boolean; nodes: Outcome[] }>(
      'return system.upgrade({ modules: [{ module: "ver", source: { code: args[0] } }], nodes: ["a1", "b1"] }, { dryRun: true })',
      version(4),
    );
    expect(dry.nodes.map((n) => [n.host, n.node, n.status])).toEqual([
      ['A', 'a1', 'planned'],
      ['B', 'b1', 'planned'],
    ]);
  }, 90_000);
});
