/**
 * Flow control between nodes, as the BEAM's busy distribution port: a node whose channel to a
 * peer is full holds the processes that send to it (their sends never fail, nothing is dropped)
 * until credit returns, and the rest of the node runs on.
 *
 * The kernel's half runs on a platform whose slices run when the test says and whose channel to
 * node `b` is full when the test says. The runtime's half runs two node runtimes in this thread,
 * joined by a real port as the host joins them, with `inFlight` — the weight the receiver has not
 * yet taken in, what its inbound port can hold from the sender — as the measure of what piles up.
 */
import type { MessagePort } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { threadPlatform } from '../src/node/thread-platform.js';
import { Kernel } from '../src/kernel/kernel.js';
import { Sig, type Envelope } from '../src/kernel/signals.js';
import type { Pid } from '../src/kernel/pid.js';
import { transpile } from '../src/compiler/transpile.js';
import { NodeRuntime, type Engine, type HostLink } from '../src/node/runtime.js';
import { WINDOW, weightOf } from '../src/node/peers.js';
import type { HostToNode, NodeData, NodeToHost } from '../src/wire/node.js';
import { HOST, waitFor } from './helpers/kernel-tools.js';

const REMOTE = '<b.1>';

const MODULE = `
  import { next, receive, send } from 'subnode';

  /** Sends 0..n-1 to \`to\`, one a step, then says so. */
  export function flood(to: string, i: number, n: number): unknown {
    if (i === n) return send('${HOST}', 'flooded');
    send(to, i);
    return next(flood, to, i + 1, n);
  }

  /** Passes on whatever it receives. */
  export function relay(to: string): unknown {
    return receive((m: unknown) => {
      send(to, m);
      return relay(to);
    });
  }
`;

/** A server that passes each cast on to \`to\`; its second version marks the state it converts. */
const server = (vsn: number) => `
  import { send } from 'subnode';
  export const vsn = ${vsn};
  export function init(to: string) { return { to }; }
  export function handleCast(m: unknown, s: any) { send(s.to, m); return { noreply: s }; }
  export function codeChange(_old: unknown, s: any) { return { ...s, converted: vsn }; }
`;

/** A kernel whose slices run when `runSlices` says and whose outbound to node `b` answers `full`. */
function steppedKernel() {
  let clock = 0;
  const slices: (() => void)[] = [];
  const said: unknown[] = [];
  const toB: unknown[] = [];
  const state = { full: false };
  const platform = {
    ...threadPlatform({
      outbound: (to: string, batch: Envelope[]) => {
        for (const e of batch) if (to === 'host' && e[0] === Sig.Message && e[1] === HOST) said.push(e[2]);
        if (to !== 'b') return false;
        for (const e of batch) if (e[0] === Sig.Message) toB.push(e[2]);
        return state.full;
      },
      emit: () => {},
    }),
    now: () => ++clock,
    schedule: (task: () => void) => void slices.push(task),
  };
  const kernel = new Kernel(platform, { node: 'a', sliceMs: 4 });
  kernel.load('flow', transpile('flow', MODULE).js);
  return {
    kernel,
    said,
    toB,
    state,
    runSlices(): number {
      let ran = 0;
      for (let task = slices.shift(); task; task = slices.shift()) {
        task();
        if (++ran > 10_000) throw new Error('the scheduler asked for over 10,000 slices');
      }
      return ran;
    },
  };
}

const message = (to: Pid, m: unknown): Envelope => [Sig.Message, to, m] as Envelope;

describe('flow control in the kernel', () => {
  it('holds a process that sends to a full node, and runs it again with credit: order kept, nothing lost', () => {
    const k = steppedKernel();
    k.state.full = true;
    const pid = k.kernel.spawn('flow', 'flood', [REMOTE, 0, 5000]);
    k.runSlices();
    // The first slice's batch found the channel full: the process ran one more step, then was held.
    const before = k.toB.length;
    expect(before).toBeLessThan(5000);
    expect(k.kernel.holding()).toEqual({ b: 1 });
    expect(k.kernel.processInfo(pid)?.status).toBe('runnable');
    k.kernel.spawn('flow', 'flood', ['<c.1>', 0, 10]);
    expect(k.runSlices()).toBeGreaterThan(0);
    // The rest of the node runs on (a process sending elsewhere finished); the held one did not move.
    expect(k.said).toEqual(['flooded']);
    expect(k.toB.length).toBe(before);

    k.state.full = false;
    k.kernel.credit('b');
    k.runSlices();
    expect(k.said).toEqual(['flooded', 'flooded']);
    expect(k.toB).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    expect(k.kernel.holding()).toEqual({});
  });

  it('a held process that waits in a receive stays held when a message wakes it', () => {
    const k = steppedKernel();
    k.state.full = true;
    const relay = k.kernel.spawn('flow', 'relay', [REMOTE]);
    k.runSlices();
    // The first batch tells the kernel the channel is full; the second send finds it full.
    k.kernel.deliver([message(relay, 'm1')]);
    k.runSlices();
    k.kernel.deliver([message(relay, 'm2')]);
    k.runSlices();
    expect(k.kernel.holding()).toEqual({ b: 1 });
    k.kernel.deliver([message(relay, 'm3'), message(relay, 'm4')]);
    k.runSlices();
    expect(k.toB).toEqual(['m1', 'm2']);
    expect(k.kernel.processInfo(relay)?.mailbox).toBe(1);

    k.state.full = false;
    k.kernel.credit('b');
    k.runSlices();
    expect(k.toB).toEqual(['m1', 'm2', 'm3', 'm4']);
    expect(k.kernel.holding()).toEqual({});
  });

  it('a held process can still be killed, and credit for it afterwards is harmless', () => {
    const k = steppedKernel();
    k.state.full = true;
    const pid = k.kernel.spawn('flow', 'flood', [REMOTE, 0, 5000]);
    k.runSlices();
    expect(k.kernel.holding()).toEqual({ b: 1 });
    k.kernel.exit(pid, 'kill');
    k.runSlices();
    expect(k.kernel.processInfo(pid)).toBeUndefined();
    k.kernel.credit('b');
    k.runSlices();
    expect(k.kernel.holding()).toEqual({});
    expect(k.said).toEqual([]);
  });

  it('a held process that ends is held no more at once (holding() counts only live processes)', () => {
    const k = steppedKernel();
    k.state.full = true;
    const pid = k.kernel.spawn('flow', 'flood', [REMOTE, 0, 5000]);
    k.runSlices();
    expect(k.kernel.holding()).toEqual({ b: 1 });
    k.kernel.exit(pid, 'kill');
    k.runSlices();
    expect(k.kernel.processInfo(pid)).toBeUndefined();
    expect(k.kernel.holding()).toEqual({});
  });

  it('a held process that moves to another node is held here no more, and credit afterwards is harmless', () => {
    const { k, pid } = heldServer();
    const [out] = k.kernel.migrateOut([pid]);
    expect(out, JSON.stringify(out)).toHaveProperty('ok');
    k.kernel.migrateCommit([pid], 'c');
    expect(k.kernel.holding()).toEqual({});
    k.state.full = false;
    k.kernel.credit('b');
    k.runSlices();
    expect(k.toB).toEqual(['m1', 'm2']);
    expect(k.kernel.processInfo(pid)).toBeUndefined();
  });

  it('a held server upgraded by suspend, changeCode and resume stays held until credit, then runs its new code', () => {
    const { k, pid } = heldServer();
    k.kernel.suspend(pid);
    k.kernel.load('fwd', transpile('fwd', server(2)).js);
    expect(k.kernel.changeCode(pid, 'fwd')).toEqual({ from: 1, to: 2 });
    k.kernel.resume(pid);
    k.kernel.deliver([message(pid, { $cast: 'm3' })]);
    k.runSlices();
    expect(k.kernel.holding()).toEqual({ b: 1 });
    expect(k.toB).toEqual(['m1', 'm2']);
    k.state.full = false;
    k.kernel.credit('b');
    k.runSlices();
    expect(k.toB).toEqual(['m1', 'm2', 'm3']);
    expect(k.kernel.getState(pid)).toEqual({ to: REMOTE, converted: 2 });
    expect(k.kernel.holding()).toEqual({});
  });

  it('a held process suspended by sys stays suspended through credit, and runs once resumed', () => {
    const k = steppedKernel();
    k.state.full = true;
    const pid = k.kernel.spawn('flow', 'flood', [REMOTE, 0, 3000]);
    k.runSlices();
    k.kernel.suspend(pid);
    k.state.full = false;
    k.kernel.credit('b');
    k.runSlices();
    expect(k.kernel.processInfo(pid)?.status).toBe('suspended');
    k.kernel.resume(pid);
    k.runSlices();
    expect(k.said).toEqual(['flooded']);
    expect(k.toB).toEqual(Array.from({ length: 3000 }, (_, i) => i));
  });
});

/** A forwarding server that sent m1 to the full node b and, taking m2, is held for it. */
function heldServer() {
  const k = steppedKernel();
  k.kernel.load('fwd', transpile('fwd', server(1)).js);
  k.state.full = true;
  const pid = k.kernel.startBehaviour('server', 'fwd', [REMOTE]);
  k.runSlices();
  k.kernel.deliver([message(pid, { $cast: 'm1' })]);
  k.runSlices();
  k.kernel.deliver([message(pid, { $cast: 'm2' })]);
  k.runSlices();
  expect(k.kernel.holding()).toEqual({ b: 1 });
  return { k, pid };
}

/** Two node runtimes on this thread, joined as the host joins nodes: the first batch through the host with a port, then the port. */
function runtimePair() {
  const listeners = new Map<string, (m: HostToNode) => void>();
  const received: Envelope[] = [];
  const credits: string[] = [];
  const link = (node: string): HostLink => ({
    data: { node, creation: 0, capabilities: {}, limits: {} } as unknown as NodeData,
    post: (message: NodeToHost) => {
      if (Array.isArray(message) || message.t !== 'route') return;
      // The host answers on a later turn, as over a worker's port.
      setImmediate(() => {
        const to = listeners.get(message.node)!;
        to({ t: 'deliver', envelopes: message.envelopes, from: node });
        if (!message.port) return;
        to({ t: 'connect', node, port: message.port });
        listeners.get(node)!({ t: 'accepted', node: message.node, offer: message.offer! });
      });
    },
    listen: (receive) => void listeners.set(node, receive),
    end: (error) => {
      throw error;
    },
  });
  const engine = (deliver: Engine['deliver']): Engine => ({ control: () => ({ ok: null }), deliver, credit: (node) => void credits.push(node) });
  const a = new NodeRuntime(link('a'));
  const b = new NodeRuntime(link('b'));
  a.serve(engine(() => {}));
  b.serve(engine((envelopes) => void received.push(...envelopes)));
  return { a, b, received, credits, hostSays: (node: string, m: HostToNode) => listeners.get(node)!(m) };
}

/** The sending end of `runtime`'s port to `node` (test access to a private). */
function peerPort(runtime: NodeRuntime, node: string): MessagePort {
  return (runtime as unknown as { ports: { peers: Map<string, { port: MessagePort }> } }).ports.peers.get(node)!.port;
}

const batch = (from: number, n: number): Envelope[] => Array.from({ length: n }, (_, i) => [Sig.Message, REMOTE, from + i] as Envelope);

describe('flow control in the runtime', () => {
  it('a full window tells the kernel; the receiver taking batches in gives credit back; the port never holds more than a window and a batch', async () => {
    const p = runtimePair();
    const size = 1000;
    let sent = 0;
    let full = false;
    let most = 0;
    // The first batch goes through the host (outside the window); the rest over the port.
    for (let round = 0; round < 3; round++) {
      p.credits.length = 0;
      full = false;
      for (let i = 0; i < 1000 && !full; i++) {
        full = p.a.outbound('b', batch(sent, size));
        sent += size;
        most = Math.max(most, p.a.inFlight('b'));
      }
      expect(full).toBe(true);
      await waitFor(() => p.credits.includes('b'), 'credit for b');
      expect(p.a.inFlight('b')).toBeLessThan(WINDOW);
    }
    expect(most).toBeLessThanOrEqual(WINDOW + weightOf(batch(0, size)));
    await waitFor(() => p.received.length === sent, 'every envelope taken in');
    expect(p.received.map((e) => e[2])).toEqual(Array.from({ length: sent }, (_, i) => i));
    p.a.close();
    p.b.close();
  });

  it("a port replaced by the host's answer gives no second credit while the new port is full", async () => {
    const p = runtimePair();
    let full = false;
    for (let i = 0; i < 1000 && !full; i++) full = p.a.outbound('b', batch(0, 1000));
    expect(full).toBe(true);
    p.hostSays('a', { t: 'disconnect', node: 'b' });
    expect(p.credits).toEqual(['b']);
    // The new offer's window fills at once (its batches wait for the host's answer).
    full = false;
    for (let i = 0; i < 1000 && !full; i++) full = p.a.outbound('b', batch(0, 1000));
    expect(full).toBe(true);
    const atCredit: number[] = [];
    const push = p.credits.push.bind(p.credits);
    p.credits.push = (...nodes: string[]) => {
      atCredit.push(p.a.inFlight('b'));
      return push(...nodes);
    };
    // The old port's close and the new port's acks come on later turns: wait until b took it all in.
    await waitFor(() => p.a.inFlight('b') < WINDOW, 'the new port drained');
    for (const inFlight of atCredit) expect(inFlight).toBeLessThan(WINDOW);
    p.a.close();
    p.b.close();
  });

  it('a refused offer releases the senders held for it once (its batches go through the host, outside the window)', async () => {
    const p = runtimePair();
    // Before the host answers, the batches wait for the offer's answer and count in its window.
    let full = false;
    for (let i = 0; i < 1000 && !full; i++) full = p.a.outbound('b', batch(0, 1000));
    expect(full).toBe(true);
    const offered = peerPort(p.a, 'b');
    let closed = false;
    offered.on('close', () => (closed = true));
    p.hostSays('a', { t: 'refused', node: 'b', encoded: false, offer: 1 });
    expect(p.credits).toEqual(['b']);
    expect(p.a.inFlight('b')).toBe(0);
    // The refused offer's port closes on a later turn: its close is no second credit.
    await waitFor(() => closed, 'the refused port closed');
    expect(p.credits).toEqual(['b']);
    p.a.close();
    p.b.close();
  });

  it('an ack that is not a positive finite weight is ignored (the window stays a number)', async () => {
    const p = runtimePair();
    let full = false;
    for (let i = 0; i < 1000 && !full; i++) full = p.a.outbound('b', batch(0, 1000));
    await waitFor(() => p.credits.includes('b'), 'credit for b');
    const before = p.a.inFlight('b');
    // The receiving end of a's port to b, as a faulty peer would answer on it.
    const port = (p.b as unknown as { ports: { incoming: Set<MessagePort> } }).ports.incoming.values().next().value!;
    for (const bad of ['x', -5, NaN, Infinity, { n: 1 }]) port.postMessage(bad);
    port.postMessage(1);
    await waitFor(() => p.a.inFlight('b') === before - 1, 'the valid ack counted');
    expect(Number.isFinite(p.a.inFlight('b'))).toBe(true);
    p.a.close();
    p.b.close();
  });

  it('a batch of one large string or binary message weighs its size, the same at both ends', async () => {
    const huge = [[Sig.Message, REMOTE, 'x'.repeat(8 << 20)]] as Envelope[];
    const tiny = [[Sig.Message, REMOTE, 1]] as Envelope[];
    expect(weightOf(huge)).toBeGreaterThan(WINDOW);
    expect(weightOf([[Sig.Message, REMOTE, new Uint8Array(1 << 20)]] as Envelope[])).toBe(weightOf(tiny) + (1 << 16));
    // One such batch fills the window, and the receiver's ack for it (computed on its copy) empties it.
    const p = runtimePair();
    expect(p.a.outbound('b', tiny)).toBe(false); // through the host, with the port
    expect(p.a.outbound('b', huge)).toBe(true);
    await waitFor(() => p.credits.includes('b'), 'credit for b');
    expect(p.a.inFlight('b')).toBe(0);
    p.a.close();
    p.b.close();
  });

  it('the peer going down gives the credit back at once', () => {
    const p = runtimePair();
    let full = false;
    for (let i = 0; i < 1000 && !full; i++) full = p.a.outbound('b', batch(0, 1000));
    expect(full).toBe(true);
    p.hostSays('a', { t: 'disconnect', node: 'b' });
    expect(p.credits).toEqual(['b']);
    // What waited for the port's answer is offered again (to the next incarnation, or refused).
    expect(p.a.inFlight('b')).toBeLessThan(WINDOW);
    p.a.close();
    p.b.close();
  });
});
