/**
 * The host's part of message routing. Nodes send to each other over direct ports; what reaches
 * the host is traffic for the host's own inboxes, for nodes a sender has no port to yet, and the
 * host's own sends, which are batched per node until the current task ends.
 */
import { isHostNode, isPid, nodeOf, formatPid, ofIncarnations, type Pid } from '../kernel/pid.js';
import { Sig, type Envelope } from '../kernel/signals.js';
import { CALL_REF } from '../kernel/host-calls.js';
import type { Dest } from '../kernel/types.js';
import { BadArgument, NoProcess, UnknownNode } from '../errors.js';
import { assertCloneable, HOST_SERVICE } from '../kernel/kernel.js';
import { randomFillSync } from 'node:crypto';
import { Inbox } from './inbox.js';
import type { Events } from './events.js';
import { publishRouted, routedWatched } from './telemetry.js';
import { decodeEnvelopes } from '../net/envelopes.js';

/** What the router needs of a node: a way in, if the node is up. */
export interface NodeSink {
  /** Hands envelopes (from node `from`, or the host) to the node; false when it is down. */
  deliver(envelopes: Envelope[], from: string): boolean;
  /**
   * The same, `count` envelopes serialized (a node's thread decodes them itself; another host
   * gets them as they are); absent where that is not possible.
   */
  deliverEncoded?(bytes: Uint8Array, from: string, count: number): boolean;
}

/** A mailbox on the host thread with a pid: an inbox, or the system's caller. */
export interface HostMailbox {
  readonly pid: Pid;
  deliver(message: unknown): void;
}

/**
 * The unguessable part of a host ref: a reply or DOWN for a host mailbox must not be forgeable by
 * a process that saw another ref (a callee sees its call's). 128 random bits per ref, drawn for
 * 256 refs at a time and written base64url (22 characters, where a UUID took 36: a call's ref
 * crosses twice).
 */
const randomBits = Buffer.allocUnsafe(16 * 256);
let randomAt = randomBits.length;
function randomPart(): string {
  if (randomAt === randomBits.length) {
    randomFillSync(randomBits);
    randomAt = 0;
  }
  const part = randomBits.toString('base64url', randomAt, randomAt + 16);
  randomAt += 16;
  return part;
}

const isMessage = (e: unknown): boolean => {
  const sig = (e as Envelope)[0];
  return sig === Sig.Message || sig === Sig.Call || sig === Sig.Reply;
};

export class Router {
  private readonly nodes = new Map<string, NodeSink>();
  private readonly inboxes = new Map<Pid, HostMailbox>();
  private readonly pending = new Map<string, Envelope[]>();
  /** Monitors held by host mailboxes: ref → [owner pid, watched pid or registered name, its node]. */
  private readonly monitors = new Map<string, [Pid, string, string]>();
  private nextInbox = 0;
  private nextRef = 0;
  private flushQueued = false;
  /** A flush on the next macrotask, for envelopes that may wait (demonitors). */
  private lateFlushQueued = false;
  /**
   * The node name of this host's own mailboxes: 'host', or `host@<host>` in a cluster, so that
   * their pids name this host cluster-wide (set before any mailbox is made).
   */
  hostNode = 'host';

  constructor(
    private readonly events: Events,
    private readonly service: (request: unknown) => void,
    /** The node a process runs on now (its home, unless it migrated). */
    private readonly locate: (pid: Pid) => string,
  ) {}

  addNode(name: string, sink: NodeSink): void {
    this.nodes.set(name, sink);
  }
  hasNode(name: string): boolean {
    return this.nodes.has(name);
  }

  /** Whether batches for `node` may come serialized (a node's thread, or another host, takes them so). */
  takesEncoded(node: string): boolean {
    return node !== 'host' && node !== this.hostNode && this.nodes.get(node)?.deliverEncoded !== undefined;
  }

  /** Envelopes for `node`, from a node without a direct port or from the host. */
  route(node: string, envelopes: Envelope[], from = 'host'): void {
    publishRouted(node, from, envelopes, isMessage);
    if (node === 'host' || node === this.hostNode) return this.toHost(envelopes, from);
    const sink = this.nodes.get(node);
    if (!sink) return this.events.emit({ type: 'message_dropped', node, count: envelopes.length, reason: 'unknown_node' });
    if (!sink.deliver(envelopes, from)) this.events.emit({ type: 'message_dropped', node, count: envelopes.length, reason: 'node_down' });
  }

  /**
   * `count` envelopes for `node` still serialized (from another host of a cluster, or from a
   * node for another host): a node of this host decodes them on its own thread, another host gets
   * them as they are; the host decodes only what it must read itself (its mailboxes, a sink
   * without that path, or when telemetry is watching).
   */
  routeEncoded(node: string, bytes: Uint8Array, count: number, from: string): void {
    const sink = this.nodes.get(node);
    if (node === 'host' || node === this.hostNode || !sink?.deliverEncoded || routedWatched()) {
      let envelopes: Envelope[];
      try {
        envelopes = decodeEnvelopes(bytes) as Envelope[];
      } catch {
        return this.events.emit({ type: 'message_dropped', node, count, reason: 'undecodable' });
      }
      return this.route(node, envelopes, from);
    }
    if (!sink.deliverEncoded(bytes, from, count)) this.events.emit({ type: 'message_dropped', node, count, reason: 'node_down' });
  }

  /** A send from the host: batched per node until the current task ends. */
  send(dest: Dest, message: unknown, resolveGlobal: (name: string) => Pid | undefined): void {
    let node: string;
    let target: string;
    if (isPid(dest)) {
      node = nodeOf(dest);
      target = dest;
    } else if (dest && typeof dest === 'object' && 'global' in dest) {
      const pid = resolveGlobal(dest.global);
      if (!pid) throw new NoProcess(`no process registered globally as '${dest.global}'`, { global: dest.global });
      node = nodeOf(pid);
      target = pid;
    } else if (dest && typeof dest === 'object' && 'name' in dest && typeof dest.node === 'string') {
      node = dest.node;
      target = dest.name;
    } else {
      throw new BadArgument(`cannot send to ${JSON.stringify(dest)} from the host: use a pid, { name, node } or { global }`);
    }
    if (node !== 'host' && node !== this.hostNode && !this.nodes.has(node)) throw new UnknownNode(`no node named '${node}'`, { node });
    assertCloneable(message);
    this.enqueue(node, [Sig.Message, target, message]);
  }

  /** A host mailbox with a pid, for talking with processes from outside any node. */
  inbox(): Inbox {
    const inbox = new Inbox(this.newPid(), {
      close: (closed) => {
        this.inboxes.delete(closed.pid);
        for (const [ref, [owner]] of this.monitors) if (owner === closed.pid) this.demonitor(ref);
        // This host's monitors of the inbox (a `system.call` to it among them) end with it.
        const downs: Envelope[] = [];
        for (const [ref, [owner, target]] of this.monitors) if (target === closed.pid) downs.push([Sig.Down, owner, closed.pid, ref, 'normal']);
        if (downs.length) this.toHost(downs, this.hostNode);
      },
      monitor: (owner, pid) => {
        if (!isPid(pid)) throw new BadArgument(`monitor() takes a pid, got ${JSON.stringify(pid)}`);
        return this.monitor(owner.pid, pid, this.locate(pid));
      },
    });
    this.inboxes.set(inbox.pid, inbox);
    return inbox;
  }

  /** Adds a mailbox of the host's own (the system's caller) under a new host pid. */
  attach<T extends HostMailbox>(make: (pid: Pid) => T): T {
    const mailbox = make(this.newPid());
    this.inboxes.set(mailbox.pid, mailbox);
    return mailbox;
  }

  /**
   * Monitors a process (a pid, or a name registered on `node`) for a host mailbox: its DOWN
   * message arrives there. The ref is unguessable, but it does not end with a reply: only a
   * `CALL_REF` ref (see `call`) does.
   */
  monitor(owner: Pid, target: string, node: string): string {
    const ref = `#Ref<host.0.${++this.nextRef}.${randomPart()}>`;
    this.watch(ref, owner, target, node);
    return ref;
  }

  /**
   * Sets up a monitor; its DOWN may come at once (the target's node is unknown, or it names a
   * mailbox of this host that is not there), so the owner must be ready for it. A mailbox of this
   * host is watched here: it ends only by closing (see `inbox`).
   */
  private watch(ref: string, owner: Pid, target: string, node: string): void {
    this.monitors.set(ref, [owner, target, node]);
    const here = node === 'host' || node === this.hostNode;
    if (here ? !this.inboxes.has(target as Pid) : !this.nodes.has(node)) this.toHost([[Sig.Down, owner, target as Pid, ref, 'noproc']], 'host');
    else if (!here) this.enqueue(node, [Sig.Monitor, target, owner, ref]);
  }

  /** A ref for a `system.call`: drawn before the call is sent, so that its caller can wait for it first. */
  callRef(): string {
    return `${CALL_REF}${++this.nextRef}.${randomPart()}>`;
  }

  /**
   * A call from a host mailbox (`system.call`) to `target` running on `node`, its messages going
   * to `home` (a pid's own node, which forwards them if it moved). One `Call` envelope, with which
   * the node both monitors the callee under the call's ref and gives it `{ $call: request, from }`.
   * When the callee replies, its node ends the monitor and says so (a `Reply` envelope, see
   * `toHost`), so a replied call needs no demonitor; a call that ends otherwise (timeout) does.
   * For a process that moved, a monitor where it runs and the message through its home, so the
   * call keeps its place among the host's sends to it; for a host mailbox (this host's or another's,
   * which takes no `Call`), a monitor and the message. `ref` is from `callRef`; the owner waits for
   * it before this (a DOWN may come at once).
   */
  call(ref: string, owner: Pid, target: string, node: string, home: string, request: unknown): void {
    assertCloneable(request);
    const mailbox = isHostNode(home);
    if (!mailbox && !this.nodes.has(home)) throw new UnknownNode(`no node named '${home}'`, { node: home });
    if (home === node && !mailbox) {
      this.monitors.set(ref, [owner, target, node]);
      this.enqueue(node, [Sig.Call, target, owner, ref, request]);
    } else {
      this.watch(ref, owner, target, node);
      this.enqueue(home, [Sig.Message, target, { $call: request, from: { pid: owner, ref } }]);
    }
  }

  /**
   * Ends a monitor: no DOWN will arrive for it (one already on its way is dropped here, its ref
   * being unknown), and the watched process forgets it. The node hears of it with the next batch
   * for it, at the latest on the next macrotask: a `system.call` that timed out (or was answered by
   * another process) ends with a demonitor, and a post of its own for it would double its posts.
   */
  demonitor(ref: string): void {
    const entry = this.monitors.get(ref);
    if (!entry) return;
    this.monitors.delete(ref);
    if (this.nodes.has(entry[2])) this.enqueue(entry[2], [Sig.Demonitor, entry[1], entry[0], ref], true);
  }

  /**
   * A node went down: host monitors of its processes fire with `noconnection` — and of those that
   * had moved there (`lost`), but not of those homed there that live elsewhere (`livesElsewhere`).
   * `upTo`: only its incarnations up to this creation (as `Kernel.nodeDown`).
   */
  nodeDown(node: string, lost: Pid[], livesElsewhere: (pid: Pid) => boolean, upTo?: number): void {
    const ofIt = ofIncarnations(node, upTo);
    const lostSet = new Set(lost);
    const downs: Envelope[] = [];
    for (const [ref, [owner, target, at]] of this.monitors) {
      const gone = isPid(target) ? lostSet.has(target) || (ofIt(target) && !livesElsewhere(target)) : at === node;
      if (gone) downs.push([Sig.Down, owner, target as Pid, ref, 'noconnection']);
    }
    if (downs.length) this.toHost(downs, 'host');
  }

  /**
   * Sends what is batched now rather than when the task ends: a control op about to go to a node
   * then finds the node up to date with the host's sends and demonitors (the node sees them in the
   * order the host issued them).
   */
  sendPending(): void {
    if (this.pending.size) this.flush();
  }

  close(): void {
    for (const inbox of [...this.inboxes.values()]) if (inbox instanceof Inbox) inbox.close();
    this.pending.clear();
  }

  private newPid(): Pid {
    return formatPid(this.hostNode, ++this.nextInbox, 0);
  }

  /** Batches an envelope until the current task ends (or, when it `mayWait`, until the next macrotask at the latest). */
  private enqueue(node: string, envelope: Envelope, mayWait = false): void {
    let batch = this.pending.get(node);
    if (!batch) this.pending.set(node, (batch = []));
    batch.push(envelope);
    if (mayWait) {
      if (!this.flushQueued && !this.lateFlushQueued) {
        this.lateFlushQueued = true;
        queueMicrotask(this.lateFlush);
      }
    } else if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
  }

  /**
   * Decided once the microtasks queued before it have run: by then a caller whose call just
   * settled has usually called again, and the flush that queued takes the waiting envelopes along
   * (a macrotask per `system.call` was an extra turn of the host's event loop); else the next macrotask.
   */
  private readonly lateFlush = (): void => {
    if (this.flushQueued) {
      this.lateFlushQueued = false;
      return;
    }
    setImmediate(() => {
      this.lateFlushQueued = false;
      if (this.pending.size) this.flush();
    });
  };

  private flush(): void {
    this.flushQueued = false;
    const batches = [...this.pending];
    this.pending.clear();
    for (const [node, envelopes] of batches) this.route(node, envelopes);
  }

  /** Envelopes for the host's own mailboxes, from node `from`. */
  private toHost(envelopes: Envelope[], from: string): void {
    let dropped = 0;
    let unexpected = 0;
    for (const e of envelopes) {
      if (e[0] === Sig.Message) {
        if (e[1] === HOST_SERVICE) {
          this.service(e[2]);
          continue;
        }
        const inbox = this.inboxes.get(e[1] as Pid);
        if (inbox) inbox.deliver(e[2]);
        else dropped++;
      } else if (e[0] === Sig.Reply) {
        // The node the call went to ended its monitor with the reply: the host's half ends too. From
        // any other node (a reply passed on, a process that moved) it is only the message, and the
        // caller's demonitor ends the monitor where it was set; an inbox's monitor (not a call's
        // ref) never ends by a reply.
        const entry = typeof e[2] === 'string' && e[2].startsWith(CALL_REF) ? this.monitors.get(e[2]) : undefined;
        if (entry !== undefined && entry[0] === e[1] && entry[2] === from) this.monitors.delete(e[2]);
        const inbox = this.inboxes.get(e[1]);
        if (inbox) inbox.deliver({ $reply: e[2], value: e[3] });
        else dropped++;
      } else if (e[0] === Sig.Down) {
        const entry = this.monitors.get(e[3]);
        // Only the watched process's own DOWN counts: a ref alone proves nothing (a name's DOWN
        // carries the pid that held it, or the name when none did).
        if (!entry || (isPid(entry[1]) && entry[1] !== e[2])) continue;
        this.monitors.delete(e[3]);
        this.inboxes.get(entry[0])?.deliver({ type: 'DOWN', ref: e[3], pid: e[2], reason: e[4] });
      } else if (e[0] === Sig.Link) {
        // Inboxes do not take part in links: tell the linker, as for a process that is gone.
        if (!this.inboxes.has(e[1])) this.route(nodeOf(e[2]), [[Sig.Exit, e[2], e[1], 'noproc', 1]]);
      } else if (e[0] === Sig.Monitor) {
        // From a process or another host's mailbox (a `system.call` to one of ours): a mailbox that
        // is not here is noproc; one that is here is not watched from outside (its close tells only
        // this host's own monitors, see `inbox`).
        if (!this.inboxes.has(e[1] as Pid)) this.route(nodeOf(e[2]), [[Sig.Down, e[2], e[1] as Pid, e[3], 'noproc']]);
      } else if (e[0] !== Sig.Demonitor && e[0] !== Sig.Unlink) {
        // Demonitor and Unlink undo what a mailbox does not hold; any other kind is not for a host.
        unexpected++;
      }
    }
    if (dropped) this.events.emit({ type: 'message_dropped', node: 'host', count: dropped, reason: 'no_inbox' });
    if (unexpected) this.events.emit({ type: 'message_dropped', node: 'host', count: unexpected, reason: 'not_for_host' });
  }
}
