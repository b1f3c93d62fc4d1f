import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { System, NoProcess, NameTaken, type Pid } from '../src/index.js';
import { until } from './helpers/wait.js';

// One module, loaded on three nodes, whose processes do what their messages say.
const agent = `
  import { receive, on, send, self, link, monitor, exit, trapExit, register, registerGlobal, spawn } from 'subnode/process';
  // Messages with no op go to the observer, if there is one.
  export function start(trap = false, observer?: string) { if (trap) trapExit(true); return loop(observer); }
  export function loop(observer?: string): unknown {
    return receive((m: any) => {
      switch (m.op) {
        case 'link': link(m.pid); break;
        case 'monitor': send(m.reply, { ref: monitor(m.pid) }); break;
        case 'crash': throw new Error('crashed on purpose');
        case 'exit': exit(m.pid, m.reason); break;
        case 'send': send(m.to, m.msg); break;
        case 'register': register(m.name); break;
        case 'global': registerGlobal(m.name); break;
        case 'whoami': send(m.reply, self()); break;
        case 'burst': for (let i = 0; i < m.n; i++) send(m.to, { seq: i, from: self() }); break;
        default: if (m.reply) send(m.reply, { got: m }); else if (observer) send(observer, m);
      }
      return loop(observer);
    });
  }
`;

let system: System;
beforeAll(async () => {
  system = await System.start({ nodes: ['a', 'b', 'c'].map((name) => ({ name, modules: { agent } })) });
});
afterAll(() => system.stop());

const spawn = (node: string, trap = false, observer?: Pid) => system.node(node).spawn('agent', 'start', [trap, observer]);

describe('messaging across nodes', () => {
  it('delivers by pid, by { name, node } and by global name, in order per sender', async () => {
    const inbox = system.inbox();
    const a = await spawn('a');
    const b = await spawn('b', false, inbox.pid);
    system.send(b, { op: 'register', name: 'bee' });
    system.send(b, { op: 'whoami', reply: inbox.pid });
    expect(await inbox.receive()).toBe(b);
    // a → b by name across nodes; b passes each on to the inbox: all arrive, in order.
    system.send(a, { op: 'burst', n: 1000, to: { name: 'bee', node: 'b' } });
    for (let i = 0; i < 1000; i++) expect(await inbox.receive()).toEqual({ seq: i, from: a });
    const c = await spawn('c');
    system.send(c, { op: 'global', name: 'sea' });
    await until('the global name to be registered', () => system.whereis('sea') === c);
    system.send({ global: 'sea' }, { op: 'x', reply: inbox.pid });
    expect(await inbox.receive()).toEqual({ got: { op: 'x', reply: inbox.pid } });
    // and from inside a node, by global name
    system.send(a, { op: 'send', to: { global: 'sea' }, msg: { op: 'y', reply: inbox.pid } });
    expect(await inbox.receive()).toEqual({ got: { op: 'y', reply: inbox.pid } });
  });

  it('keeps per-sender order from two nodes at once', async () => {
    const inbox = system.inbox();
    const sink = await spawn('c', false, inbox.pid);
    const [a, b] = [await spawn('a'), await spawn('b')];
    system.send(a, { op: 'burst', n: 3000, to: sink });
    system.send(b, { op: 'burst', n: 3000, to: sink });
    const last: Record<string, number> = { [a]: -1, [b]: -1 };
    for (let i = 0; i < 6000; i++) {
      const m = await inbox.receive<{ seq: number; from: string }>();
      expect(m.seq).toBe(last[m.from]! + 1);
      last[m.from] = m.seq;
    }
  });

  it('keeps per-sender order over the direct port for a large burst', async () => {
    const inbox = system.inbox();
    const sender = await spawn('a');
    system.send(sender, { op: 'burst', n: 5000, to: inbox.pid });
    const seqs: number[] = [];
    for (let i = 0; i < 5000; i++) seqs.push((await inbox.receive<{ seq: number }>()).seq);
    expect(seqs).toEqual(Array.from({ length: 5000 }, (_, i) => i));
  });

  it('propagates a crash over a cross-node link and reports DOWN to a cross-node monitor', async () => {
    const inbox = system.inbox();
    const victim = await spawn('a');
    const trapper = await spawn('b', true, inbox.pid);
    const plain = await spawn('c');
    system.send(trapper, { op: 'link', pid: victim });
    system.send(plain, { op: 'link', pid: victim });
    system.send(plain, { op: 'monitor', pid: victim, reply: inbox.pid });
    const { ref } = await inbox.receive<{ ref: string }>();
    const watchPlain = inbox.monitor(plain);
    const watchTrapper = inbox.monitor(trapper);
    await new Promise((r) => setTimeout(r, 30));
    system.send(victim, { op: 'crash' });
    // plain (not trapping) dies with the same reason; trapper lives on.
    const down = await inbox.receive<{ ref: string; reason: { error: { message: string } } }>({ type: 'DOWN', ref: watchPlain });
    expect(down.reason.error.message).toBe('crashed on purpose');
    expect(ref).toMatch(/^#Ref<c\./);
    // the trapping process got the exit as a message, and lives on
    expect(await inbox.receive({ type: 'EXIT' })).toMatchObject({ from: victim, reason: { error: { message: 'crashed on purpose' } } });
    system.send(trapper, { op: 'whoami', reply: inbox.pid });
    expect(await inbox.receive((m: unknown) => typeof m === 'string')).toBe(trapper);
    expect(inbox.drain().some((m) => (m as { ref?: string }).ref === watchTrapper)).toBe(false);
  });

  it('kills across nodes with exit(pid, kill) and monitors of dead pids say noproc', async () => {
    const inbox = system.inbox();
    const target = await spawn('c', true);
    const killer = await spawn('a');
    const ref = inbox.monitor(target);
    // A round trip on the monitor's path (host → c): once answered, the monitor is in place.
    system.send(target, { op: 'whoami', reply: inbox.pid });
    expect(await inbox.receive((m: unknown) => m === target)).toBe(target);
    system.send(killer, { op: 'exit', pid: target, reason: 'kill' });
    expect(await inbox.receive({ type: 'DOWN', ref })).toMatchObject({ pid: target, reason: 'killed' });
    const again = inbox.monitor(target);
    expect(await inbox.receive({ type: 'DOWN', ref: again })).toMatchObject({ reason: 'noproc' });
  });

  it('drops messages to dead pids and unknown names on other nodes without harming the sender', async () => {
    const inbox = system.inbox();
    const sender = await spawn('a');
    const gone = await spawn('b');
    await system.node('b').exit(gone, 'kill');
    await expect(system.node('b').exit(gone, 'kill')).rejects.toBeInstanceOf(NoProcess);
    system.send(sender, { op: 'send', to: gone, msg: 'lost' });
    system.send(sender, { op: 'send', to: { name: 'nobody', node: 'c' }, msg: 'lost' });
    system.send(sender, { op: 'whoami', reply: inbox.pid });
    expect(await inbox.receive()).toBe(sender);
  });

  it('refuses a global name that is taken', async () => {
    const a = await spawn('a');
    system.register('taken', a);
    expect(() => system.register('taken', '<b.999>' as Pid)).toThrow(NameTaken);
    system.unregister('taken');
    expect(system.whereis('taken')).toBeUndefined();
  });

  it('lists nodes, processes and modules', async () => {
    expect(system.nodes().map((n) => [n.name, n.status])).toEqual([
      ['a', 'running'],
      ['b', 'running'],
      ['c', 'running'],
    ]);
    const pid = await spawn('a');
    const info = await system.node('a').processInfo(pid);
    expect(info).toMatchObject({ pid, status: 'waiting', mailbox: 0, initial: 'agent.start', versions: [{ module: 'agent', version: 1, state: 'current' }] });
    const list = await system.node('a').processes();
    expect(list.find((p) => p.pid === pid)).toEqual(info);
  });
});
