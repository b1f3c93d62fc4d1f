/**
 * A move whose `migrateIn` request fails as a whole while the target runs it anyway (the request
 * timed out on the driving host, the target's host answered too late): the driver asks the target
 * which pids arrived, so the move ends with exactly one live process under the pid, on the target,
 * holding the converted state, with every message sent during the move received once, in order.
 * Hosts are OS processes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from './helpers/nats-server.js';
import { HostProcess } from './helpers/nats-hosts.js';
import { counter } from './helpers/nats-agent.js';

let nats: NatsServer;
const hosts: HostProcess[] = [];

beforeAll(async () => {
  nats = await NatsServer.start();
}, 30_000);
afterAll(async () => {
  await Promise.all(hosts.map((h) => h.stop()));
  await nats?.stop();
}, 30_000);

/** The counter at vsn 2: its conversion takes `ms` of the node's thread (longer than a control request may wait) and marks the state. */
const slowCounter = (ms: number): string =>
  counter.replace('export const vsn = 1;', 'export const vsn = 2;') +
  `
  export function codeChange(_from: unknown, state: any) {
    const until = Date.now() + ${ms};
    while (Date.now() < until);
    return { ...state, converted: true };
  }
`;

describe('a move whose migrateIn answer is lost', () => {
  it('the target ran it after the request timed out: the process runs there only, converted, and every message sent during the move arrives once, in order', async () => {
    // Control requests between hosts wait 400 ms; b1's conversion takes 1500 ms (within the move's 8000 ms limit).
    const options = { servers: nats.url, cluster: 'unanswered', heartbeatMs: 150, deadAfterMs: 5_000, requestTimeoutMs: 400 };
    const [a, b] = await Promise.all([
      HostProcess.start('A', options, [{ name: 'a1', modules: { counter } }]),
      HostProcess.start('B', options, [{ name: 'b1', modules: { counter: slowCounter(1_500) } }]),
    ]);
    hosts.push(a, b);
    await a.until('b1 seen', async () => (await a.eval<{ name: string }[]>('return system.nodes()')).some((n) => n.name === 'b1'));
    const server = await a.eval<string>('return system.node("a1").startServer("counter", [0])');

    // A numbered stream from A while the move runs, and after it (sent every 10 ms until the move is done, then 20 more).
    const { result, sent } = await a.eval<{ result: Record<string, unknown>; sent: number }>(
      `const moving = system.migrate(args[0], 'b1', { timeoutMs: 8000 });
       let done = false, sent = 0;
       moving.then(() => (done = true), () => (done = true));
       while (!done) { system.send(args[0], { from: 'A', seq: sent++ }); await new Promise((r) => setTimeout(r, 10)); }
       for (let i = 0; i < 20; i++) system.send(args[0], { from: 'A', seq: sent++ });
       return { result: await moving.catch((e) => ({ ok: false, error: e.message })), sent };`,
      server,
    );
    // One live process under the pid: on b1, none left at a1 (without the question, a1 resumed it: two).
    const live = {
      b1: await b.eval('return (await system.node("b1").processInfo(args[0]))?.migration ?? null', server),
      a1: await a.eval('return (await system.node("a1").processInfo(args[0]))?.status ?? null', server),
    };
    expect(live).toEqual({ b1: { moves: 1, cameFrom: 'a1' }, a1: null });
    expect(result).toEqual({ pid: server, ok: true, from: 'a1', to: 'b1', moves: 1, unanswered: true });
    // The stream outlasted the failed request: some of it was sent while the process was suspended at a1.
    expect(sent).toBeGreaterThan(30);
    // Every message once, in order, at the converted process.
    await b.until('the whole stream at b1', async () => (await b.eval<{ count: number }>('return system.node("b1").getState(args[0])', server)).count === sent);
    const state = await b.eval<{ count: number; seen: Record<string, number>; converted?: boolean }>('return system.node("b1").getState(args[0])', server);
    expect(state).toEqual({ count: sent, seen: { A: sent - 1 }, converted: true });
    expect(await a.eval('return system.locate(args[0])', server)).toMatchObject({ node: 'b1', moves: 1 });
  }, 60_000);

  it('the target does not say within the conversion limit: the copies it may start are withdrawn (they leave without dying) and the source resumes the processes, so none runs twice', async () => {
    // Four conversions of 900 ms each on b1: its migrateIn takes over 3600 ms, longer than the 400 ms
    // request plus the 2000 ms the driver asks for (the conversion limit), each well within that limit.
    const options = { servers: nats.url, cluster: 'uncertain', heartbeatMs: 150, deadAfterMs: 8_000, requestTimeoutMs: 400 };
    const [a, b] = await Promise.all([
      HostProcess.start('A', options, [{ name: 'a1', modules: { counter } }]),
      HostProcess.start('B', options, [{ name: 'b1', modules: { counter: slowCounter(900) } }]),
    ]);
    hosts.push(a, b);
    await a.until('b1 seen', async () => (await a.eval<{ name: string }[]>('return system.nodes()')).some((n) => n.name === 'b1'));
    const servers = await a.eval<string[]>('return Promise.all([0, 1, 2, 3].map(() => system.node("a1").startServer("counter", [0])))');
    const results = await a.eval<Record<string, unknown>[]>('return system.migrateAll({ from: "a1", to: "b1", pids: args[0], timeoutMs: 2000 })', servers);
    for (const [i, r] of results.entries())
      expect(r).toMatchObject({ pid: servers[i], ok: false, error: { code: 'timeout', details: { op: 'migrateIn', uncertain: true } } });

    // b1 ran its migrateIn after all, then the withdrawal: every copy started there and left without
    // dying (no migrated_exit: nothing ended); a1 runs them all, unconverted.
    for (const pid of servers) await b.waitEvent('event', (e) => e.type === 'migration_withdrawn' && e.node === 'b1' && e.pid === pid && e.from === 'a1');
    expect(b.events.some((e) => e.type === 'migrated_exit')).toBe(false);
    const there = await b.eval<unknown[]>('return Promise.all(args[0].map(async (p) => (await system.node("b1").processInfo(p)) ?? null))', servers);
    expect(there).toEqual([null, null, null, null]);
    for (const pid of servers) {
      await a.eval('system.send(args[0], { from: "A", seq: 0 })', pid);
      await a.until(`${pid} counts at a1`, async () => (await a.eval<{ count: number }>('return system.node("a1").getState(args[0])', pid)).count === 1);
      expect(await a.eval('return system.node("a1").getState(args[0])', pid)).toEqual({ count: 1, seen: { A: 0 } });
      expect(await a.eval('return system.locate(args[0])', pid)).toMatchObject({ node: 'a1', moves: 0 });
    }
  }, 60_000);
});
