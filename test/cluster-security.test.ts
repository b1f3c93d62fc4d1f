/**
 * NATS credentials and per-host permissions (issue #17, security): hosts as separate OS processes
 * on a nats-server whose config gives each host its own user (an nkey, a password) with exactly
 * the permissions `hostPermissions` documents. A host with its own credentials joins and works;
 * a host that tries to publish as another, read another's traffic or beat under another's name
 * is denied by NATS (the violation is seen, nothing is delivered); a batch that names a node its
 * sender does not own is dropped; wrong credentials are a typed error, from `System.start` and
 * from `subnode run` (exit code), never a hang. A token and the options check are covered too.
 */
import { mkdtempSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { serialize } from 'node:v8';
import { connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { createUser } from '@nats-io/nkeys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { System } from '../src/index.js';
import { hostPermissions } from '../src/cluster/permissions.js';
import { encodeItems } from '../src/net/frames.js';
import { NatsServer } from './helpers/nats-server.js';
import { HostProcess, type HostError } from './helpers/nats-hosts.js';
import { agent } from './helpers/nats-agent.js';
import { Running, cli } from './helpers/cli-tools.js';
import { until } from './helpers/wait.js';
import { Operator } from './helpers/nats-jwt.js';

const CLUSTER = 'sec';
const servers: NatsServer[] = [];
const hosts: HostProcess[] = [];
let dir: string;
let nats: NatsServer;
let seedA: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'subnode-cluster-sec-'));
  // Host A authenticates with an nkey, hosts B and C with a password; each with its own permissions.
  const keyA = createUser();
  seedA = join(dir, 'a.nk');
  writeFileSync(seedA, new TextDecoder().decode(keyA.getSeed()), { mode: 0o600 });
  const config = {
    authorization: {
      users: [
        { nkey: keyA.getPublicKey(), permissions: hostPermissions('A', CLUSTER) },
        { user: 'B', password: 'pass-B', permissions: hostPermissions('B', CLUSTER) },
        { user: 'C', password: 'pass-C', permissions: hostPermissions('C', CLUSTER) },
        // For the CLI, in the default cluster namespace ('subnode').
        { user: 'D', password: 'pass-D', permissions: hostPermissions('D') },
      ],
    },
  };
  writeFileSync(join(dir, 'nats.json'), JSON.stringify(config));
  nats = await NatsServer.start(['-c', join(dir, 'nats.json')]);
  servers.push(nats);
}, 30_000);

afterAll(async () => {
  await Promise.all(hosts.map((h) => h.stop()));
  await Promise.all(servers.map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

const options = (credentials: unknown) => ({ servers: nats.url, cluster: CLUSTER, heartbeatMs: 200, deadAfterMs: 2_000, credentials });

/** Every status the connection reports (permission violations come as `error`). */
function statuses(nc: NatsConnection): { type: string; message?: string }[] {
  const seen: { type: string; message?: string }[] = [];
  void (async () => {
    for await (const s of nc.status()) seen.push({ type: s.type, message: 'error' in s ? (s.error as Error).message : undefined });
  })();
  return seen;
}

describe('per-host NATS permissions', () => {
  let a: HostProcess;
  let b: HostProcess;
  let inboxPid: string;
  let target: string;

  it('hosts with their own credentials (nkey, password) join and work: nodes, messages, loads and globals', async () => {
    a = await HostProcess.start('A', options({ nkeySeed: seedA }), [{ name: 'a1', modules: { agent } }]);
    hosts.push(a);
    b = await HostProcess.start('B', options({ user: 'B', pass: 'pass-B' }), [{ name: 'b1' }]);
    hosts.push(b);
    for (const h of [a, b])
      await h.until('both nodes', async () => (await h.eval<string>('return system.nodes().map((n) => n.name).sort().join()')) === 'a1,b1');
    // A's inbox sees whatever a1's agent is sent (the agent passes on what it does not know).
    inboxPid = await a.eval<string>('ctx.inbox = system.inbox(); return ctx.inbox.pid');
    target = await a.eval<string>('return system.node("a1").spawn("agent", "start", [false, args[0]], { name: "obs" })', inboxPid);
    // From B: a message by pid, a load on b1 whose code goes through the object store, a global name.
    await b.eval('system.send(args[0], { op: "hello from B" })', target);
    expect(await a.eval('return ctx.inbox.receive(() => true, 10000)')).toEqual({ op: 'hello from B' });
    await a.eval('await system.node("b1").load("agent", args[0])', agent);
    const onB = await a.eval<string>('return system.node("b1").spawn("agent", "start", [])');
    await a.eval('system.send(args[0], { op: "global", name: "sec-global" })', onB);
    await a.until('the global name from B', () => a.eval('return system.whereis("sec-global")'));
    await b.eval('system.send({ global: "sec-global" }, { op: "send", to: args[0], msg: { op: "via global" } })', target);
    expect(await a.eval('return ctx.inbox.receive(() => true, 10000)')).toEqual({ op: 'via global' });
  });

  it("denies a host publishing as another, reading another's subjects, or beating under its name; nothing is delivered", async () => {
    const nc = await connect({ servers: nats.url, user: 'B', pass: 'pass-B', inboxPrefix: `_INBOX_subnode.${CLUSTER}.B` });
    const seen = statuses(nc);
    try {
      const batchesIn = await a.eval<number>('return system.cluster.stats.batchesIn');
      // As host C, to A's node: a message to a1's observer.
      const forged = encodeItems([['a1', 'b1', serialize([[0, target, { op: 'forged as C' }]]), 1, 0]]);
      nc.publish(`subnode.${CLUSTER}.data.A.C`, forged);
      nc.publish(`subnode.${CLUSTER}.node.A.a1.C`, forged);
      // Reading A's data and control requests; answering as A's inbox owner.
      const sub = nc.subscribe(`subnode.${CLUSTER}.data.A.*`);
      const subEnded = (async () => {
        try {
          for await (const _ of sub) return 'received';
        } catch (error) {
          return (error as Error).message;
        }
        return 'ended';
      })();
      await expect(nc.request(`subnode.${CLUSTER}.ctl.A.C`, serialize({ node: 'a1', op: 'processes', args: [] }), { timeout: 5_000 })).rejects.toThrow(
        /Permissions Violation for Publish/,
      );
      // A heartbeat under A's name.
      const kvm = new (await import('@nats-io/kv')).Kvm(nc);
      const hostsBucket = await kvm.open(`subnode_${CLUSTER}_hosts`);
      await expect(hostsBucket.put('A', '{}')).rejects.toThrow(/Permissions Violation for Publish to "\$KV\.subnode_sec_hosts\.A"/);
      // Destroying the buckets: denied too.
      const jsm = await (await import('@nats-io/jetstream')).jetstreamManager(nc);
      await expect(jsm.streams.purge(`KV_subnode_${CLUSTER}_hosts`)).rejects.toThrow(/Permissions Violation/);
      expect(await subEnded).toMatch(/Permissions Violation for Subscription to "subnode\.sec\.data\.A\.\*"/);
      await until('the violations reported', () =>
        [`Publish to "subnode.${CLUSTER}.data.A.C"`, `Publish to "subnode.${CLUSTER}.node.A.a1.C"`, `Subscription to "subnode.${CLUSTER}.data.A.*"`].every(
          (what) => seen.some((s) => s.type === 'error' && s.message?.includes(what)),
        ),
      );
      // On its own subject, a batch that names a node B does not own (A's a1) is dropped at A.
      nc.publish(`subnode.${CLUSTER}.data.A.B`, encodeItems([['a1', 'a1', serialize([[0, target, { op: 'forged as a1' }]]), 1, 0]]));
      const event = await a.waitEvent('cluster', (e) => e.type === 'forged');
      expect(event).toMatchObject({ host: 'B', node: 'a1', dropped: 1 });
      // The same on a1's own subject, which a1's thread reads itself: dropped there, reported by A.
      nc.publish(`subnode.${CLUSTER}.node.A.a1.B`, encodeItems([['a1', 'a1', serialize([[0, target, { op: 'forged as a1, to a1' }]]), 1, 0]]));
      const atNode = await a.waitEvent('cluster', (e) => e.type === 'forged' && e !== event);
      expect(atNode).toMatchObject({ host: 'B', node: 'a1', dropped: 1 });
      // The denied batch never reached A; the dropped one did (and nothing else).
      expect(await a.eval<number>('return system.cluster.stats.batchesIn')).toBe(batchesIn + 1);
      // Nothing forged was delivered: the next message a1's observer passes on is B's real one.
      await b.eval('system.send(args[0], { op: "after" })', target);
      expect(await a.eval('return ctx.inbox.receive(() => true, 10000)')).toEqual({ op: 'after' });
      expect(await a.eval('return ctx.inbox.receive(() => true, 300).catch((e) => e.name)')).toBe('Timeout');
      // The cluster is unharmed: A is still B's live peer.
      expect((await b.eval<string[]>('return system.cluster.hosts()')).sort()).toEqual(['A', 'B']);
    } finally {
      await nc.close();
    }
  });

  it('wrong credentials are a typed error from System.start, never a hang', async () => {
    const started = Date.now();
    const wrong = await HostProcess.start('C', options({ user: 'C', pass: 'nope' })).catch((e: HostError) => e);
    expect(wrong).toMatchObject({ errorName: 'ClusterNotAuthorized', code: 'not_allowed' });
    expect((wrong as Error).message).toMatch(/NATS refused host 'C'.*check its credentials/);
    const unknownKey = join(dir, 'other.nk');
    writeFileSync(unknownKey, new TextDecoder().decode(createUser().getSeed()));
    const stranger = await HostProcess.start('C', options({ nkeySeed: unknownKey })).catch((e: HostError) => e);
    expect(stranger).toMatchObject({ errorName: 'ClusterNotAuthorized', code: 'not_allowed' });
    // C's user joining as host D: its permissions do not cover D's subjects, so joining is refused.
    const impostor = await HostProcess.start('D', options({ user: 'C', pass: 'pass-C' })).catch((e: HostError) => e);
    expect(impostor).toMatchObject({ errorName: 'ClusterNotAuthorized', code: 'not_allowed' });
    expect((impostor as Error).message).toMatch(/Permissions Violation/);
    expect(Date.now() - started).toBeLessThan(25_000);
    const missing = await System.start({ cluster: { servers: nats.url, name: 'C', credentials: { credsFile: join(dir, 'none.creds') } } }).catch(
      (e: Error) => e,
    );
    expect(missing).toMatchObject({ name: 'BadArgument', message: expect.stringMatching(/cannot read the credentials file/) });
  }, 60_000);

  it('subnode run --credentials FILE: the right ones join, wrong ones exit 1 with the reason', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: dir };
    delete env.SUBNODE_SOCKET;
    cpSync(resolve('test/fixtures/cli/counter.v1.ts'), join(dir, 'counter.ts'));
    writeFileSync(join(dir, 'system.json'), JSON.stringify({ nodes: [{ name: 'c1', modules: { counter: './counter.ts' } }] }));
    writeFileSync(join(dir, 'wrong.json'), JSON.stringify({ user: 'D', pass: 'wrong' }));
    writeFileSync(join(dir, 'right.json'), JSON.stringify({ user: 'D', pass: 'pass-D' }));
    const refused = await cli(['run', 'system.json', '--cluster', nats.url, '--host', 'D', '--credentials', 'wrong.json'], { cwd: dir, env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/NATS refused host 'D'/);
    // Another host's name with D's credentials: refused too (D may heartbeat only as D).
    const impostor = await cli(['run', 'system.json', '--cluster', nats.url, '--host', 'E', '--credentials', 'right.json'], { cwd: dir, env });
    expect(impostor.code).toBe(1);
    expect(impostor.stderr).toMatch(/NATS refused host 'E'.*Permissions Violation/);
    const run = Running.start(['run', 'system.json', '--cluster', nats.url, '--host', 'D', '--credentials', 'right.json'], { cwd: dir, env });
    try {
      await run.waitFor(/control socket /);
      const nodes = await cli(['nodes', '--json'], { cwd: dir, env });
      expect((JSON.parse(nodes.stdout) as { name: string }[]).map((n) => n.name)).toContain('c1');
    } finally {
      await cli(['stop'], { cwd: dir, env });
      await run.exited;
    }
  }, 90_000);
});

describe('JWT credentials (operator mode, .creds files)', () => {
  it('hosts join with their .creds files, their JWT permissions hold, a stranger is refused', async () => {
    const operator = new Operator();
    writeFileSync(join(dir, 'operator.json'), JSON.stringify(operator.config()));
    const server = await NatsServer.start(['-c', join(dir, 'operator.json')]);
    servers.push(server);
    const credsFile = (name: string, host: string): string => {
      const file = join(dir, `${name}.creds`);
      writeFileSync(file, operator.creds(name, hostPermissions(host, 'jwt')), { mode: 0o600 });
      return file;
    };
    const jwtOptions = (credsFile: string) => ({ servers: server.url, cluster: 'jwt', heartbeatMs: 200, deadAfterMs: 2_000, credentials: { credsFile } });
    const a = await HostProcess.start('A', jwtOptions(credsFile('a', 'A')), [{ name: 'ja', modules: { agent } }]);
    hosts.push(a);
    const b = await HostProcess.start('B', jwtOptions(credsFile('b', 'B')), [{ name: 'jb' }]);
    hosts.push(b);
    await b.until('A and its node', async () => (await b.eval<string>('return system.nodes().map((n) => n.name).sort().join()')) === 'ja,jb');
    const inbox = await b.eval<string>('ctx.inbox = system.inbox(); return ctx.inbox.pid');
    const pid = await b.eval<string>('return system.node("ja").spawn("agent", "start", [])');
    await b.eval('system.send(args[0], { op: "hi", reply: args[1] })', pid, inbox);
    expect(await b.eval('return ctx.inbox.receive(() => true, 10000)')).toEqual({ got: { op: 'hi', reply: inbox } });
    // B's JWT grants no publish as A.
    const nc = await connect({
      servers: server.url,
      inboxPrefix: '_INBOX_subnode.jwt.B',
      authenticator: credsAuthenticator(new TextEncoder().encode(operator.creds('b2', hostPermissions('B', 'jwt')))),
    });
    try {
      await expect(nc.request('subnode.jwt.ctl.A.C', serialize({ node: 'ja', op: 'processes', args: [] }), { timeout: 5_000 })).rejects.toThrow(
        /Permissions Violation for Publish/,
      );
    } finally {
      await nc.close();
    }
    // A user of another operator: refused with a typed error.
    const strangerFile = join(dir, 'stranger.creds');
    writeFileSync(strangerFile, new Operator().creds('x', hostPermissions('C', 'jwt')));
    await expect(System.start({ cluster: { servers: server.url, name: 'C', cluster: 'jwt', credentials: { credsFile: strangerFile } } })).rejects.toMatchObject(
      {
        name: 'ClusterNotAuthorized',
      },
    );
  }, 60_000);
});

describe('cluster credentials', () => {
  it('a token', async () => {
    const server = await NatsServer.start(['--auth', 'tok-123']);
    servers.push(server);
    const system = await System.start({ cluster: { servers: server.url, name: 'A', credentials: { token: 'tok-123' } } });
    await system.stop();
    await expect(System.start({ cluster: { servers: server.url, name: 'A', credentials: { token: 'nope' } } })).rejects.toMatchObject({
      name: 'ClusterNotAuthorized',
      code: 'not_allowed',
    });
  });

  it('checks its options', async () => {
    await expect(System.start({ cluster: { servers: 'nats://127.0.0.1:1', name: 'bad name' } })).rejects.toThrow(/bad host name/);
    await expect(System.start({ cluster: { servers: 'nats://127.0.0.1:1', name: 'A', heartbeatMs: 1000, deadAfterMs: 1000 } })).rejects.toThrow(/deadAfterMs/);
    await expect(System.start({ cluster: { servers: 'nats://127.0.0.1:1', name: 'A', credentials: { user: 'x' } as never } })).rejects.toThrow(
      /credentials must be/,
    );
    await expect(System.start({ cluster: { servers: 'nats://127.0.0.1:1', name: 'A', hearbeatMs: 100 } as never })).rejects.toThrow(
      /unknown option hearbeatMs/,
    );
    // No server there: a typed error, at once.
    await expect(System.start({ cluster: { servers: 'nats://127.0.0.1:1', name: 'A' } })).rejects.toMatchObject({
      name: 'ClusterUnavailable',
      code: 'unavailable',
    });
  });
});
