/**
 * A cluster of hosts on NATS (issue #17), each host a separate OS process: joining, node names,
 * messaging, links and monitors, global names, loads and control across hosts.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from './helpers/nats-server.js';
import { HostProcess, type HostError } from './helpers/nats-hosts.js';
import { agent, counter } from './helpers/nats-agent.js';

let nats: NatsServer;
const hosts: HostProcess[] = [];
let clusterNo = 0;

beforeAll(async () => {
  nats = await NatsServer.start();
}, 30_000);
afterAll(async () => {
  await Promise.all(hosts.map((h) => h.stop()));
  await nats?.stop();
}, 30_000);

/** Hosts of a fresh cluster (its own namespace on the shared server). */
async function cluster(spec: Record<string, string[]>, extra: Record<string, unknown> = {}): Promise<HostProcess[]> {
  const options = { servers: nats.url, cluster: `t${++clusterNo}`, heartbeatMs: 200, deadAfterMs: 2_000, ...extra };
  const started = await Promise.all(
    Object.entries(spec).map(([name, nodes]) =>
      HostProcess.start(
        name,
        options,
        nodes.map((node) => ({ name: node, modules: { agent } })),
      ),
    ),
  );
  hosts.push(...started);
  const all = Object.values(spec).flat().sort();
  // Every host sees every node.
  for (const h of started)
    await h.until(
      'all nodes',
      async () =>
        (await h.eval<{ name: string }[]>('return system.nodes()'))
          .map((n) => n.name)
          .sort()
          .join() === all.join(),
    );
  return started;
}

describe('a cluster of host processes', () => {
  it("lists every host's nodes with their host, and refuses a node name taken on another host", async () => {
    const [a, b] = await cluster({ A: ['a1', 'a2'], B: ['b1'] });
    const seen = await b!.eval<{ name: string; host: string; status: string }[]>('return system.nodes()');
    expect(seen.map((n) => [n.name, n.host, n.status]).sort()).toEqual([
      ['a1', 'A', 'running'],
      ['a2', 'A', 'running'],
      ['b1', 'B', 'running'],
    ]);
    expect((await a!.eval<string[]>('return system.cluster.hosts()')).sort()).toEqual(['A', 'B']);
    const refused = await b!.eval('return system.addNode({ name: "a1" })').catch((e: HostError) => e);
    expect(refused).toMatchObject({ code: 'name_taken', errorName: 'NodeNameTaken' });
    expect((refused as Error).message).toMatch(/node name 'a1' is taken by host 'A'/);
    // The failed claim left nothing behind: b1 is still B's only node.
    expect((await b!.eval<{ name: string }[]>('return system.nodes()')).filter((n) => n.name === 'a1')).toHaveLength(1);
  });

  it('sends by pid, by { name, node } and by global name across hosts, in order per sender', async () => {
    const [a, b, c] = await cluster({ A: ['a1'], B: ['b1'], C: ['c1'] });
    await a!.eval('ctx.inbox = system.inbox(); return ctx.inbox.pid');
    // An observer on b1 passes every message it gets to A's inbox: host mailbox pids cross hosts too.
    const inboxPid = await a!.eval<string>('return ctx.inbox.pid');
    expect(inboxPid).toMatch(/^<host@A\.\d+>$/);
    const b1 = await a!.eval<string>('return system.node("b1").spawn("agent", "start", [false, args[0]], { name: "obs" })', inboxPid);
    expect(b1).toMatch(/^<b1\./);
    const c1 = await c!.eval<string>('return system.node("c1").spawn("agent", "start", [])');
    // c1 → b1 by { name, node }, 2,000 messages, all in order.
    await c!.eval('system.send(args[0], { op: "burst", n: 2000, to: { name: "obs", node: "b1" } })', c1);
    const got = await a!.eval<{ seq: number; from: string }[]>(
      'const out = []; for (let i = 0; i < 2000; i++) out.push(await ctx.inbox.receive(() => true, 10000)); return out',
    );
    expect(got.map((m) => m.seq)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    expect(new Set(got.map((m) => m.from))).toEqual(new Set([c1]));
    // by pid from the host of another node, and by global name from a process.
    await b!.eval('system.send(args[0], { op: "global", name: "sea" })', c1);
    await a!.until('the global on A', () => a!.eval('return system.whereis("sea")'));
    await a!.eval('system.send({ global: "sea" }, { op: "x", reply: ctx.inbox.pid })');
    expect(await a!.eval('return ctx.inbox.receive(() => true, 10000)')).toEqual({ got: { op: 'x', reply: inboxPid } });
    await b!.until('the global on B', () => b!.eval('return system.whereis("sea")'));
    await b!.eval('system.send(args[0], { op: "send", to: { global: "sea" }, msg: { op: "y", reply: args[1] } })', b1, inboxPid);
    expect(await a!.eval('return ctx.inbox.receive(() => true, 10000)')).toEqual({ got: { op: 'y', reply: inboxPid } });
    // a dead pid on another host: dropped, no error at the sender.
    await c!.eval('await system.node("c1").exit(args[0], "kill")', c1);
    await a!.eval('system.send(args[0], { op: "z" })', c1);
    await a!.eval('await system.call({ name: "nobody", node: "c1" }, "x", 500).catch(() => {})');
  });

  it('a burst far larger than maxPendingEnvelopes goes through while connected: none dropped, in order', async () => {
    // maxPendingEnvelopes bounds what waits through an outage, not a burst on a live connection.
    const [a, b] = await cluster({ A: ['a1'], B: ['b1'] }, { maxPendingEnvelopes: 500 });
    await b!.eval('await system.node("b1").load("counter", args[0])', counter);
    const server = await b!.eval<string>('return system.node("b1").startServer("counter", [0])');
    const sender = await a!.eval<string>('return system.node("a1").spawn("agent", "start", [])');
    await a!.eval('system.send(args[0], { op: "burst", n: 30000, to: args[1] })', sender, server);
    await b!.until('every message', async () => (await b!.eval<number>('return system.call(args[0], "get")', server)) === 30_000, 30_000);
    expect(await b!.eval('return system.call(args[0], "seen")', server)).toEqual({ [sender]: 29_999 });
    expect(a!.clusterEvents.filter((e) => e.type === 'link_overflow')).toEqual([]);
  }, 60_000);

  it('reaches a process in an isolate node of another host, and back', async () => {
    const [a, b] = await cluster({ A: ['a1'], B: [] });
    await b!.eval('await system.addNode({ name: "bi", kind: "isolate", modules: { agent: args[0] } })', agent);
    await a!.until('the isolate node', async () => (await a!.eval<string[]>('return system.nodes().map((n) => n.name)')).includes('bi'));
    const inboxPid = await a!.eval<string>('ctx.inbox = system.inbox(); return ctx.inbox.pid');
    const pid = await a!.eval<string>('return system.node("bi").spawn("agent", "start", [])');
    await a!.eval('for (let i = 0; i < 3; i++) system.send(args[0], { op: "x", i, reply: args[1] })', pid, inboxPid);
    const got = await a!.eval('const out = []; for (let i = 0; i < 3; i++) out.push(await ctx.inbox.receive(() => true, 10000)); return out');
    expect(got).toEqual([0, 1, 2].map((i) => ({ got: { op: 'x', i, reply: inboxPid } })));
  });

  it('links and monitors across hosts, and calls a process on another host', async () => {
    const [a, b] = await cluster({ A: ['a1'], B: ['b1'] });
    await a!.eval('ctx.inbox = system.inbox()');
    const inboxPid = await a!.eval<string>('return ctx.inbox.pid');
    const watcher = await a!.eval<string>('return system.node("a1").spawn("agent", "start", [true, args[0]])', inboxPid);
    const target = await b!.eval<string>('return system.node("b1").spawn("agent", "start", [])');
    // a1's process links to and monitors b1's; the host monitors it too.
    await a!.eval(
      'system.send(args[0], { op: "link", pid: args[1] }); system.send(args[0], { op: "monitor", pid: args[1], reply: args[2] })',
      watcher,
      target,
      inboxPid,
    );
    const { ref } = await a!.eval<{ ref: string }>('return ctx.inbox.receive(() => true, 10000)');
    await a!.eval('ctx.hostRef = ctx.inbox.monitor(args[0])', target);
    // Both senders' signals reached B before the crash is asked for there (per-sender order: a reply after them).
    await a!.eval(
      'system.send(args[0], { op: "whoami", reply: ctx.inbox.pid }); system.send(args[1], { op: "send", to: args[0], msg: { op: "whoami", reply: ctx.inbox.pid } })',
      target,
      watcher,
    );
    expect(await a!.eval('return [await ctx.inbox.receive(() => true, 10000), await ctx.inbox.receive(() => true, 10000)]')).toEqual([target, target]);
    await b!.eval('system.send(args[0], { op: "crash" })', target);
    const msgs = await a!.eval<{ type: string; reason: unknown; ref?: string }[]>(
      'const out = []; for (let i = 0; i < 3; i++) out.push(await ctx.inbox.receive(() => true, 10000)); return out',
    );
    const byType = (t: string) => msgs.filter((m) => m.type === t);
    expect(byType('EXIT')).toHaveLength(1);
    expect(
      byType('DOWN')
        .map((m) => m.ref)
        .sort(),
    ).toEqual([ref, await a!.eval<string>('return ctx.hostRef')].sort());
    for (const m of msgs) expect(JSON.stringify(m.reason)).toMatch(/crashed on purpose/);
    // A call from A to a server on B: the reply comes back to A's caller mailbox.
    await b!.eval(
      'await system.node("b1").load("ctr", "export function init(n: number) { return n; } export function handleCall(r: any, _f: unknown, s: number) { return { reply: s + r, state: s + r }; } export function handleCast(_m: unknown, s: number) { return { noreply: s }; }")',
    );
    const server = await b!.eval<string>('return system.node("b1").startServer("ctr", [10])');
    expect(await a!.eval('return system.call(args[0], 5)', server)).toBe(15);
    // b1 reads its subject and sends its replies on its own connection: B's main thread takes in
    // none of A's calls and sends none of the replies; each is one NATS message each way.
    const stats = (h: HostProcess) => h.eval<{ batchesIn: number; batchesOut: number }>('return system.cluster.stats');
    const [aBefore, bBefore] = [await stats(a!), await stats(b!)];
    expect(await a!.eval('let n = 0; for (let i = 0; i < 50; i++) n = await system.call(args[0], 1); return n', server)).toBe(65);
    const [aAfter, bAfter] = [await stats(a!), await stats(b!)];
    expect([bAfter.batchesIn - bBefore.batchesIn, bAfter.batchesOut - bBefore.batchesOut]).toEqual([0, 0]);
    expect([aAfter.batchesIn - aBefore.batchesIn, aAfter.batchesOut - aBefore.batchesOut]).toEqual([50, 50]);
    // A call from B to an inbox on A that answers it (a host mailbox takes no Call envelope), and to a closed one.
    const answerer = await a!.eval<string>(
      'const box = system.inbox(); box.receive((m) => m && m.$call !== undefined, 20000).then((m) => system.send(m.from.pid, { $reply: m.from.ref, value: { echoed: m.$call } })); return box.pid',
    );
    expect(await b!.eval('return system.call(args[0], "hi", 10000)', answerer)).toEqual({ echoed: 'hi' });
    const closed = await a!.eval<string>('const box = system.inbox(); box.close(); return box.pid');
    expect(await b!.eval('return system.call(args[0], "hi", 10000).then(() => "replied", (e) => e.name)', closed)).toBe('NoProcess');
  });

  it('runs control operations on a node of another host: load, spawn, processes, errors with their type', async () => {
    const [a] = await cluster({ A: ['a1'], B: ['b1'] });
    const report = await a!.eval<{ module: string }>('return system.node("b1").load("hello", "export function hi(x: number) { return x; }")');
    expect(report.module).toBe('hello');
    const pid = await a!.eval<string>('return system.node("b1").spawn("agent", "start", [])');
    const procs = await a!.eval<{ pid: string }[]>('return system.node("b1").processes()');
    expect(procs.map((p) => p.pid)).toContain(pid);
    const modules = await a!.eval<{ name: string }[]>('return system.node("b1").modules()');
    expect(modules.map((m) => m.name).sort()).toEqual(['agent', 'hello']);
    const err = await a!.eval('return system.node("b1").spawn("nope", "start", [])').catch((e: HostError) => e);
    expect(err).toMatchObject({ code: 'unknown_module' });
    // A policy set from A is recorded by B in the node's release: it survives a restart of b1.
    const policy = { retention: { kind: 'stack', depth: 3 }, purge: 'soft' };
    await a!.eval('await system.node("b1").setPolicy(args[0], "hello")', policy);
    await a!.eval('await system.node("b1").restart()');
    const after = await a!.eval<{ name: string; policy: unknown }[]>('return system.node("b1").modules()');
    expect(after.find((m) => m.name === 'hello')?.policy).toEqual(policy);
  });
});

describe('module code from the code store', () => {
  const version = (v: string) => `
    export function init() { return 0; }
    export function handleCall(_r: unknown, _f: unknown, s: number) { return { reply: '${v}', state: s }; }
    export function handleCast(_m: unknown, s: number) { return { noreply: s }; }
  `;

  it("a node started on one host fetches the modules it lacks: the latest loaded on another host's node, or one by hash", async () => {
    const [a, b] = await cluster({ A: ['a1'], B: ['b0'] });
    // A's node a1 loads v1 (from its host, by path-less source text); B has no copy of it.
    await a!.eval('await system.node("a1").load("ver", { code: args[0] })', version('v1'));
    const asked = async (node: string) =>
      b!.eval<string>('const pid = await system.node(args[0]).startServer("ver", []); return system.call(pid, "which")', node);
    await b!.eval('await system.addNode({ name: "b1", modules: { ver: { cluster: "latest" } } })');
    expect(await asked('b1')).toBe('v1');
    // A loads v2 on a node of B (remote control): that is now the latest; v1 stays fetchable by its hash.
    await a!.eval('await system.node("b0").load("ver", { code: args[0] })', version('v2'));
    await b!.eval('await system.addNode({ name: "b2", modules: { ver: { cluster: "latest" } } })');
    expect(await asked('b2')).toBe('v2');
    const v1 = createHash('sha256').update(version('v1')).digest('hex');
    await b!.eval('await system.addNode({ name: "b3", modules: { ver: { cluster: args[0] } } })', v1);
    expect(await asked('b3')).toBe('v1');
    // The fetched version is the node's: a restart brings it back without the store.
    await b!.eval('await system.node("b3").restart()');
    expect(await asked('b3')).toBe('v1');
    // Nothing by that name or hash: a typed error.
    const missing = await b!.eval('return system.addNode({ name: "b4", modules: { nope: { cluster: "latest" } } })').catch((e: HostError) => e);
    expect(missing).toMatchObject({ code: 'load_failed' });
    expect((missing as Error).message).toMatch(/module 'nope': no host of the cluster has loaded it/);
    const badHash = await b!.eval('return system.addNode({ name: "b5", modules: { ver: { cluster: "0".repeat(64) } } })').catch((e: HostError) => e);
    expect(badHash).toMatchObject({ code: 'load_failed' });
  });
});

describe('migration across hosts', () => {
  it('moves a server from a node of one host to a node of another under a stream: none lost, per-sender order kept', async () => {
    const [a, b, c] = await cluster({ A: ['a1'], B: ['b1'], C: ['c1'] });
    await a!.eval('await system.node("a1").load("counter", args[0])', counter);
    await a!.eval('await system.node("b1").load("counter", args[0])', counter);
    const server = await a!.eval<string>('return system.node("a1").startServer("counter", [0])');
    // C streams to the server's pid (numbered), while A moves it to b1 on host B.
    await c!.eval(
      'let seq = 0; ctx.timer = setInterval(() => { for (let i = 0; i < 200; i++) system.send(args[0], { from: "C", seq: seq++ }); if (seq >= 6000) clearInterval(ctx.timer); }, 2)',
      server,
    );
    await a!.until('the stream to start', async () => (await a!.eval<number>('return system.call(args[0], "get")', server)) > 500);
    const result = await a!.eval<{ ok: boolean; from: string; to: string }>('return system.migrate(args[0], "b1")', server);
    expect(result).toMatchObject({ ok: true, from: 'a1', to: 'b1' });
    expect((await b!.eval<{ pid: string }[]>('return system.node("b1").processes()')).map((p) => p.pid)).toContain(server);
    await a!.until('every message', async () => (await a!.eval<number>('return system.call(args[0], "get")', server)) === 6000, 20_000);
    expect(await c!.eval('return system.call(args[0], "seen")', server)).toEqual({ C: 5999 });
    // A drove the move; B and C locate the process on b1 too, and reach it there directly.
    for (const h of [b!, c!]) {
      await h.until('the move announced', async () => (await h.eval<{ node: string }>('return system.locate(args[0])', server)).node === 'b1');
      expect(await h.eval('return system.locate(args[0])', server)).toMatchObject({ node: 'b1', home: 'a1', moves: 1, path: ['a1', 'b1'] });
      expect(await h.eval('return (await system.process(args[0]).getState()).count', server)).toBe(6000);
    }
  });
});
