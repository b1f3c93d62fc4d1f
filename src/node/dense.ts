/**
 * Entry point of a dense thread: one worker serving many isolate nodes (`dense: true` in a node's
 * spec). Each node is still its own isolate with its own kernel, module namespaces, capabilities
 * and limits, behind its own runtime (src/node/runtime.ts) and boundary; they share this thread's
 * event loop. A runaway entry into one isolate is cut at its wall bound (sliceWallMs: 4 × its CPU
 * limit), so it delays the others by at most that; an isolate over its memory limit is disposed and its node ends alone; an
 * error that ends this thread ends all its nodes (the host restarts each per its policy).
 *
 * Nodes of this thread send to each other without a port: a batch is queued and handed to the
 * receiver once the sender's entry has returned (never into one isolate from inside another).
 */
import { parentPort, type Transferable } from 'node:worker_threads';
import type { Envelope } from '../kernel/signals.js';
import type { DenseToHost, HostToDense, HostToNode, NodeData } from '../wire/node.js';
import { IsolateEngine } from './isolate-engine.js';
import { DEFAULT_MEMORY_MB, dropAhead, loadAhead } from './kernel-image.js';
import { NodeRuntime, type HostLink, type Inbound } from './runtime.js';

const host = parentPort!;

interface DenseNode {
  runtime: NodeRuntime;
  engine?: IsolateEngine;
  receive?: (message: HostToNode) => void;
}

const nodes = new Map<string, DenseNode>();

/** Batches between nodes of this thread, in the order sent. */
let queued: [DenseNode, Envelope[] | string, string][] = [];
let draining = false;

function drain(): void {
  draining = false;
  const due = queued;
  queued = [];
  for (const [target, batch, from] of due) if (nodes.get(target.runtime.node) === target) target.runtime.inbound(batch, from);
}

function sibling(name: string): Inbound | undefined {
  const target = nodes.get(name);
  if (!target) return undefined;
  return (batch, from) => {
    queued.push([target, batch, from]);
    if (!draining) {
      draining = true;
      queueMicrotask(drain);
    }
  };
}

const post = (message: DenseToHost, transfer?: readonly Transferable[]): void => host.postMessage(message, transfer as Transferable[] | undefined);

function add(data: NodeData): void {
  const name = data.node;
  const link: HostLink = {
    data,
    post: (message, transfer) => post({ t: 'from', node: name, message }, transfer),
    listen: (receive) => {
      node.receive = receive;
    },
    end: (error) => {
      remove(name);
      post({ t: 'exit', node: name, error: error.message });
    },
    sibling,
  };
  const node: DenseNode = { runtime: new NodeRuntime(link) };
  link.post({ t: 'booting' });
  try {
    node.engine = new IsolateEngine(node.runtime);
    nodes.set(name, node);
    node.runtime.serve(node.engine);
  } catch (error) {
    node.engine?.dispose();
    nodes.delete(name);
    post({ t: 'exit', node: name, error: `the node did not start: ${(error as Error).message}` });
  }
  aheadFor(data.limits.memoryMb ?? DEFAULT_MEMORY_MB);
}

/** A load ahead is due (at most one at a time), and whether the thread is closing (none then). */
let loading = false;
let closing = false;

/**
 * Once this thread is idle, loads the kernel for the next node, with the memory limit of the last
 * (src/node/kernel-image.ts `loadAhead`): a node then starts with only its boot. A load that fails
 * is left to the next node's start, which loads its own and reports why it could not.
 */
function aheadFor(memoryMb: number): void {
  if (loading) return;
  loading = true;
  setImmediate(() => {
    loading = false;
    if (closing) return;
    try {
      loadAhead(memoryMb);
    } catch {
      dropAhead();
    }
  });
}

function remove(name: string): void {
  const node = nodes.get(name);
  if (!node) return;
  nodes.delete(name);
  node.runtime.close();
  node.engine?.dispose();
}

host.on('message', (message: HostToDense) => {
  switch (message.t) {
    case 'add':
      return add(message.data);
    case 'to':
      return nodes.get(message.node)?.receive?.(message.message);
    case 'end':
      remove(message.node);
      return post({ t: 'ended', node: message.node });
    case 'close':
      // Not terminated from outside with isolates just disposed: isolated-vm finishes its cleanup
      // on this thread's loop, which then runs out and the thread exits.
      closing = true;
      for (const name of [...nodes.keys()]) remove(name);
      dropAhead();
      host.close();
  }
});
