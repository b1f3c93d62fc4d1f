/**
 * A cluster of host processes on NATS (issue #17): two hosts registering one global name at once
 * (the bucket's compare-and-set keeps one; the other host reports `global_conflict`), and the bulk
 * moves — `migrateAll` and `purgeToNode` — from a node of one host to a node of another.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from './helpers/nats-server.js';
import { HostProcess } from './helpers/nats-hosts.js';
import { counter } from './helpers/nats-agent.js';
import { until } from './helpers/wait.js';
import { walker } from './fixtures/migration.js';

let nats: NatsServer;
const hosts: HostProcess[] = [];
let clusterNo = 0;
const scratch = mkdtempSync(join(tmpdir(), 'subnode-cluster-bulk-'));

beforeAll(async () => {
  nats = await NatsServer.start();
}, 30_000);
afterAll(async () => {
  await Promise.all(hosts.map((h) => h.stop()));
  await nats?.stop();
  rmSync(scratch, { recursive: true, force: true });
}, 30_000);

/** Two hosts, A with node a1 and B with node b1, that see each other's nodes. */
async function twoHosts(modules: Record<string, string>, extra: Record<string, unknown> = {}): Promise<{ a: HostProcess; b: HostProcess; cluster: string }> {
  const cluster = `bulk${++clusterNo}`;
  const options = { servers: nats.url, cluster, heartbeatMs: 200, deadAfterMs: 2_000, ...extra };
  const [a, b] = await Promise.all([HostProcess.start('A', options, [{ name: 'a1', modules }]), HostProcess.start('B', options, [{ name: 'b1', modules }])]);
  hosts.push(a!, b!);
  for (const h of [a!, b!]) await h.until('both nodes', async () => (await h.eval<{ name: string }[]>('return system.nodes()')).length === 2);
  return { a: a!, b: b!, cluster };
}

describe('global names across hosts', () => {
  it('two hosts register one name at once: the bucket keeps the first write, the other host reports global_conflict and takes the winner', async () => {
    // B stays busy long enough for A's registration to reach the bucket first: heartbeats wait too, so judge slowly.
    const { a, b, cluster } = await twoHosts({ counter }, { deadAfterMs: 20_000 });
    const onA = await a.eval<string>('return system.node("a1").startServer("counter", [1])');
    const onB = await b.eval<string>('return system.node("b1").startServer("counter", [2])');
    const flag = join(scratch, `${cluster}-go`);
    const blocked = join(scratch, `${cluster}-blocked`);
    // B registers 'leader' (its own registry takes it at once; the bucket write is queued), says so,
    // and then blocks its thread until the test says A's write is in the bucket: B's write comes
    // second. A registers only once B has (on a busy machine B's timer may fire late, and B would
    // then find the name A's already and refuse it).
    await b.eval(
      `setTimeout(() => {
         system.register('leader', args[0]);
         const { existsSync, writeFileSync } = process.getBuiltinModule('node:fs');
         writeFileSync(args[2], 'blocked');
         const until = Date.now() + 15000;
         while (!existsSync(args[1]) && Date.now() < until);
       }, 0)`,
      onB,
      flag,
      blocked,
    );
    await until('B registered and blocked', () => existsSync(blocked), 10_000);
    await a.eval('system.register("leader", args[0])', onA);
    const nc = await connect({ servers: nats.url });
    try {
      const kv = await new Kvm(jetstream(nc)).open(`subnode_${cluster}_globals`);
      const key = Buffer.from('leader').toString('base64url');
      await until('A holds leader in the bucket', async () => (await kv.get(key))?.string() === onA, 10_000);
    } finally {
      writeFileSync(flag, 'go');
      await nc.close();
    }
    await b.until('global_conflict on B', () => b.events.some((e) => e.type === 'global_conflict'));
    expect(b.events.find((e) => e.type === 'global_conflict')).toMatchObject({ name: 'leader', kept: onA, refused: onB });
    expect(a.events.some((e) => e.type === 'global_conflict')).toBe(false);
    for (const h of [a, b]) await h.until('the winner everywhere', async () => (await h.eval('return system.whereis("leader")')) === onA);
    // A call by the global name from B reaches A's server.
    expect(await b.eval('return system.call({ global: "leader" }, "get")')).toBe(1);
  }, 60_000);
});

describe('bulk moves across hosts', () => {
  it('migrateAll moves every server of a module from a node of host A to a node of host B, states kept, reachable by their pids', async () => {
    const { a, b } = await twoHosts({ counter });
    const pids = await a.eval<string[]>('return Promise.all(Array.from({ length: 40 }, (_, i) => system.node("a1").startServer("counter", [i])))');
    const results = await a.eval<{ pid: string; ok: boolean; to: string }[]>(
      'return system.migrateAll({ from: "a1", to: "b1", module: "counter", batch: 16 })',
    );
    expect(
      results
        .filter((r) => r.ok)
        .map((r) => r.pid)
        .sort(),
    ).toEqual([...pids].sort());
    expect(results.every((r) => !r.ok || r.to === 'b1')).toBe(true);
    const onB = (await b.eval<{ pid: string }[]>('return system.node("b1").processes()')).map((p) => p.pid);
    for (const pid of pids) expect(onB).toContain(pid);
    // Each answers by its old pid with the state it had, from either host.
    for (const [i, pid] of pids.entries()) {
      expect(await (i % 2 ? a : b).eval('return system.call(args[0], "get")', pid)).toBe(i);
      expect(await a.eval('return system.locate(args[0]).node', pid)).toBe('b1');
    }
  }, 60_000);

  it("purgeToNode moves the processes lingering in a module's old code on host A's node to host B's legacy node, then purges", async () => {
    const { a, b } = await twoHosts({ walker: walker(1) });
    const inbox = await a.eval<string>('ctx.inbox = system.inbox(); return ctx.inbox.pid');
    const old = await a.eval<string[]>('return Promise.all([1, 2, 3].map((n) => system.node("a1").spawn("walker", "start", [n])))');
    const stuck = await a.eval<string>('return system.node("a1").spawn("walker", "stubborn", [0])');
    await a.eval('await system.node("a1").load("walker", args[0])', walker(2));
    const fresh = await a.eval<string>('return system.node("a1").spawn("walker", "start", [9])');
    const report = await a.eval<{ moved: { pid: string; ok: boolean; to: string }[]; purge: { ok: boolean; purged: number[]; killed: string[] } }>(
      'return system.purgeToNode("a1", "walker", "b1")',
    );
    expect(
      report.moved
        .filter((r) => r.ok)
        .map((r) => r.pid)
        .sort(),
    ).toEqual([...old].sort());
    expect(report.moved.find((r) => !r.ok)?.pid).toBe(stuck);
    expect(report.purge).toMatchObject({ ok: true, purged: [1], killed: [stuck] });
    expect(await a.eval('return system.node("a1").lingering("walker")')).toEqual([]);
    // The moved ones run the old code on host B's node, by their old pids; the fresh one stays.
    const ask = (pid: string) =>
      a.eval<{ total: number; node: string; vsn: number }>(
        'system.send(args[0], { op: "ask", reply: args[1] }); return ctx.inbox.receive((m) => m && typeof m.total === "number", 10000)',
        pid,
        inbox,
      );
    for (const [i, pid] of old.entries()) expect(await ask(pid)).toMatchObject({ total: i + 1, node: 'b1', vsn: 1 });
    expect(await ask(fresh)).toMatchObject({ total: 9, node: 'a1', vsn: 2 });
    expect((await b.eval<{ pid: string }[]>('return system.node("b1").processes()')).map((p) => p.pid).sort()).toEqual([...old].sort());
  }, 60_000);
});

describe('large control messages across hosts', () => {
  it('moves a process whose mailbox is larger than a NATS message there and back (the snapshots go through the spill bucket), every message kept', async () => {
    const { a, b } = await twoHosts({ walker: walker(1) });
    const pid = await a.eval<string>('return system.node("a1").spawn("walker", "start", [7])');
    // 3,000 messages of ~1 KB its receive does not take: ~3 MB queued, over NATS's 1 MiB max payload.
    await a.eval('for (let i = 0; i < 3000; i++) system.send(args[0], { op: "pad", i, data: "x".repeat(1000) })', pid);
    const queued = (h: HostProcess, node: string) => h.eval<number | undefined>(`return (await system.node("${node}").processInfo(args[0]))?.mailbox`, pid);
    await a.until('the mailbox filled', async () => (await queued(a, 'a1')) === 3000);
    expect(await a.eval('return system.migrate(args[0], "b1")', pid)).toMatchObject({ ok: true, to: 'b1' });
    expect(await queued(b, 'b1')).toBe(3000);
    // Back: now the answer of the node that gives it up is the large one.
    expect(await a.eval('return system.migrate(args[0], "a1")', pid)).toMatchObject({ ok: true, to: 'a1' });
    expect(await queued(a, 'a1')).toBe(3000);
    await a.eval('ctx.box = system.inbox(); system.send(args[0], { op: "ask", reply: ctx.box.pid })', pid);
    expect(await a.eval('return ctx.box.receive((m) => m && typeof m.total === "number", 10000)')).toMatchObject({ total: 7, node: 'a1' });
  }, 60_000);
});
