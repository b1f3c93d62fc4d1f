/**
 * A cluster under failure (issue #17): a host killed with SIGKILL mid-stream, the host coming
 * back, the NATS server restarted, a host too slow to read its batches, a node's thread busy
 * while a stream comes to it. Hosts are OS processes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from './helpers/nats-server.js';
import { HostProcess } from './helpers/nats-hosts.js';
import { agent, counter } from './helpers/nats-agent.js';

let nats: NatsServer;
const hosts: HostProcess[] = [];
let clusterNo = 0;
const DEAD_AFTER = 1_500;

beforeAll(async () => {
  nats = await NatsServer.start();
}, 30_000);
afterAll(async () => {
  await Promise.all(hosts.map((h) => h.stop()));
  await nats?.stop();
}, 30_000);

function options(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { servers: nats.url, cluster: `f${++clusterNo}`, heartbeatMs: 150, deadAfterMs: DEAD_AFTER, ...extra };
}

async function host(name: string, cluster: Record<string, unknown>, nodes: string[]): Promise<HostProcess> {
  const h = await HostProcess.start(
    name,
    cluster,
    nodes.map((node) => ({ name: node, modules: { agent, counter } })),
  );
  hosts.push(h);
  return h;
}

const sees = (h: HostProcess, node: string, creation?: number) =>
  h.until(`node ${node}`, async () =>
    (await h.eval<{ name: string; creation: number }[]>('return system.nodes()')).some(
      (n) => n.name === node && (creation === undefined || n.creation === creation),
    ),
  );

describe('cluster failures', () => {
  it('a host killed mid-stream: the others get noconnection in bounded time, keep what was delivered, and the host comes back with a new creation', async () => {
    const cl = options();
    const a = await host('A', cl, ['a1']);
    const b = await host('B', cl, ['b1']);
    await sees(a, 'b1');
    await a.eval('ctx.inbox = system.inbox()');
    const inboxPid = await a.eval<string>('return ctx.inbox.pid');
    const sink = await a.eval<string>('return system.node("a1").startServer("counter", [0])');
    const watcher = await a.eval<string>('return system.node("a1").spawn("agent", "start", [true, args[0]])', inboxPid);
    const sender = await b.eval<string>('return system.node("b1").spawn("agent", "start", [])');
    expect(sender).toMatch(/^<b1\.\d+>$/);
    await a.eval('system.send(args[0], { op: "link", pid: args[1] }); ctx.ref = ctx.inbox.monitor(args[1])', watcher, sender);
    // B streams to A (500 messages a tick, numbered) until it is killed.
    await b.eval('let seq = 0; ctx.timer = setInterval(() => { for (let i = 0; i < 500; i++) system.send(args[0], { from: "B", seq: seq++ }); }, 5)', sink);
    await a.until('the stream to arrive', async () => (await a.eval<number>('return system.call(args[0], "get")', sink)) > 2_000);
    await b.kill();
    const killedAt = Date.now();
    const downs = await a.eval<{ type: string; reason: unknown }[]>(
      'return [await ctx.inbox.receive(() => true, 15000), await ctx.inbox.receive(() => true, 15000)]',
    );
    const noticedMs = Date.now() - killedAt;
    expect(downs.map((d) => [d.type, d.reason]).sort()).toEqual([
      ['DOWN', 'noconnection'],
      ['EXIT', 'noconnection'],
    ]);
    expect(noticedMs).toBeLessThan(DEAD_AFTER + 4_000);
    await a.waitEvent('cluster', (e) => e.type === 'host_down' && e.host === 'B');
    // What arrived before the kill is all there, a gap-free prefix of what B sent, in order.
    const seen = await a.eval<Record<string, number>>('return system.call(args[0], "seen")', sink);
    const count = await a.eval<number>('return system.call(args[0], "get")', sink);
    expect(seen.B).toBe(count - 1);
    expect((await a.eval<{ name: string }[]>('return system.nodes()')).map((n) => n.name)).toEqual(['a1']);
    // B comes back (a new process): b1's pids get a new creation, so old pids never reach it.
    const b2 = await host('B', cl, ['b1']);
    await sees(a, 'b1', 1_000);
    const again = await b2.eval<string>('return system.node("b1").spawn("agent", "start", [])');
    expect(again).toMatch(/^<b1\.\d+\.1000>$/);
    await a.eval('system.send(args[0], { op: "whoami", reply: ctx.inbox.pid })', again);
    expect(await a.eval('return ctx.inbox.receive(() => true, 10000)')).toBe(again);
  });

  it('the NATS server restarted: hosts reconnect, nothing crashes, nobody is declared gone, messaging resumes', async () => {
    const cl = options({ deadAfterMs: 4_000 });
    const a = await host('A', cl, ['a1']);
    const b = await host('B', cl, ['b1']);
    await sees(a, 'b1');
    await a.eval('ctx.inbox = system.inbox()');
    const echo = await b.eval<string>('return system.node("b1").spawn("agent", "start", [])');
    await a.eval('system.send(args[0], { op: "x", reply: ctx.inbox.pid })', echo);
    expect(await a.eval('return ctx.inbox.receive(() => true, 10000)')).toEqual({ got: { op: 'x', reply: expect.any(String) } });
    await nats.restart(300);
    // The hosts' own connections (their nodes' connections reconnect on their own: events naming the node).
    for (const h of [a, b]) await h.waitEvent('cluster', (e) => e.type === 'connection' && e.status === 'reconnect' && !e.node, 20_000);
    for (const [h, node] of [
      [a, 'a1'],
      [b, 'b1'],
    ] as const)
      await h.waitEvent('cluster', (e) => e.type === 'connection' && e.status === 'reconnect' && e.node === node, 20_000);
    // Sent after the reconnect: arrives (retried until the server has its subscriptions back).
    await a.until(
      'an answer after the restart',
      async () => {
        await a.eval('system.send(args[0], { op: "y", reply: ctx.inbox.pid })', echo);
        return a.eval('return ctx.inbox.receive((m) => m.got?.op === "y", 500).catch(() => undefined)');
      },
      20_000,
    );
    // Control and KV work again too.
    expect((await a.eval<{ pid: string }[]>('return system.node("b1").processes()')).map((p) => p.pid)).toContain(echo);
    expect(a.clusterEvents.concat(b.clusterEvents).filter((e) => e.type === 'host_down')).toEqual([]);
    expect(a.proc.exitCode).toBeNull();
    expect(b.proc.exitCode).toBeNull();
  });

  it("a host too slow to read its mailboxes' batches reports slow_consumer and still gets every message, in order", async () => {
    // Slow, not gone: the stall below must stay well inside deadAfterMs, or under load A rightly
    // declares B gone (a stall as long as deadAfterMs is a death by design) and drops its batches.
    const cl = options({ slowPendingBatches: 50, deadAfterMs: 6_000 });
    const a = await host('A', cl, ['a1']);
    const b = await host('B', cl, ['b1']);
    await sees(a, 'b1');
    const inbox = await b.eval<string>('ctx.inbox = system.inbox(); return ctx.inbox.pid');
    // B's main thread (which reads its mailboxes' subject) stalls while A sends 400 batches (one per tick).
    // The stall starts right after B answers (its reply is already on its way): A sends into it.
    await b.eval('setTimeout(() => { const t = Date.now(); while (Date.now() - t < 1500); }, 0); return true');
    await a.eval('for (let i = 0; i < 400; i++) { system.send(args[0], { seq: i }); await new Promise((r) => setImmediate(r)); }', inbox);
    await b.eval('return true'); // answered once the stall is over
    await b.waitEvent('cluster', (e) => e.type === 'slow_consumer');
    const seqs = await b.eval<number[]>('const out = []; for (let i = 0; i < 400; i++) out.push((await ctx.inbox.receive(() => true, 10000)).seq); return out');
    expect(seqs).toEqual(Array.from({ length: 400 }, (_, i) => i));
  });

  it('a node whose thread is busy while another host streams to it (it reads NATS itself) gets every message, in order', async () => {
    const cl = options({ deadAfterMs: 6_000 });
    const a = await host('A', cl, ['a1']);
    const b = await host('B', cl, ['b1']);
    await sees(a, 'b1');
    const sink = await b.eval<string>('return system.node("b1").startServer("counter", [0])');
    await b.eval('await system.node("b1").load("busy", args[0])', 'export function start(ms: number) { const t = Date.now(); while (Date.now() - t < ms); }');
    // b1's thread runs 1.5 s without returning to its event loop while A sends 400 batches (one per tick).
    await b.eval('await system.node("b1").spawn("busy", "start", [1500])');
    await a.eval('for (let i = 0; i < 400; i++) { system.send(args[0], { from: "host", seq: i }); await new Promise((r) => setImmediate(r)); }', sink);
    await b.until('every message', async () => (await b.eval<number>('return system.call(args[0], "get")', sink)) === 400);
    expect(await b.eval('return system.call(args[0], "seen")', sink)).toEqual({ host: 399 });
    expect(b.clusterEvents.filter((e) => e.type === 'connection')).toEqual([]);
  });
});
