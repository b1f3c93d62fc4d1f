/**
 * A load answers in one post: the events it emits (`module_loaded`, the `module_purged` of an idle
 * old version) travel with its reply, and the host reports them before the load settles, in the
 * order they happened — what `system.on` listeners see is unchanged. Unit-tested on a node's
 * runtime with a link that records what it posts, then end to end on thread and isolate nodes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { System, type NodeKind } from '../src/index.js';
import { NodeRuntime, type Engine, type HostLink } from '../src/node/runtime.js';
import type { KernelEvent } from '../src/kernel/types.js';
import { checkCapabilities } from '../src/kernel/capabilities.js';
import type { Result } from '../src/kernel/control-ops.js';
import type { HostToNode, NodeToHost } from '../src/wire/node.js';
import { record } from './helpers/sandbox-tools.js';
import { waitFor } from './helpers/kernel-tools.js';

/** A runtime whose host link records every post; `control` is what its engine does for each request. */
function runtimeWith(control: (runtime: NodeRuntime, op: string) => Result<unknown> | Promise<Result<unknown>>) {
  const posted: NodeToHost[] = [];
  let toNode: (message: HostToNode) => void = () => {};
  const link: HostLink = {
    data: { node: 'a', creation: 0, capabilities: checkCapabilities(undefined), limits: {} },
    // Cloned as a worker's port would: an answer that cannot be copied throws here.
    post: (message) => void posted.push(structuredClone(message)),
    listen: (receive) => void (toNode = receive),
    end: () => {},
  };
  const runtime = new NodeRuntime(link);
  const engine: Engine = { control: (op) => control(runtime, op), deliver: () => {} };
  runtime.serve(engine);
  posted.length = 0; // 'ready'
  const request = (op: string, id = 1) => toNode({ t: 'control', id, op, args: [] } as unknown as HostToNode);
  return { posted, request };
}

const loaded = (version: number): KernelEvent => ({ type: 'module_loaded', node: 'a', module: 'm', version });
const purged = (version: number): KernelEvent => ({ type: 'module_purged', node: 'a', module: 'm', version });

describe("a node's runtime", () => {
  it('answers a load in one post that carries the events it emitted, in order', () => {
    const { posted, request } = runtimeWith((runtime) => {
      runtime.emit(loaded(2));
      runtime.emit(purged(1));
      return { ok: 'done' };
    });
    request('load');
    expect(posted).toEqual([{ t: 'reply', id: 1, result: { ok: 'done' }, events: [loaded(2), purged(1)] }]);
    request('loadAtomic', 2);
    expect(posted).toHaveLength(2);
    expect(posted[1]).toMatchObject({ t: 'reply', id: 2, events: [loaded(2), purged(1)] });
  });

  it('posts held events before anything else the load sends to the host, so the order holds', () => {
    const { posted, request } = runtimeWith((runtime) => {
      runtime.emit(loaded(2));
      runtime.outbound('host', [[0, '<host.1>', 'hello']]);
      runtime.emit(purged(1));
      return { ok: 'done' };
    });
    request('load');
    // Envelopes for the host's mailboxes cross as a bare array (src/wire/node.ts).
    expect(posted.map((m) => (Array.isArray(m) ? 'envelopes' : m.t))).toEqual(['event', 'envelopes', 'reply']);
    expect(posted[0]).toEqual({ t: 'event', event: loaded(2) });
    expect(posted[2]).toEqual({ t: 'reply', id: 1, result: { ok: 'done' }, events: [purged(1)] });
  });

  it('posts the events at once when the load answers later (a drain), and after that as they come', async () => {
    let finish: (r: Result<unknown>) => void = () => {};
    const { posted, request } = runtimeWith((runtime) => {
      runtime.emit(loaded(2));
      return new Promise((resolve) => (finish = resolve));
    });
    request('load');
    expect(posted).toEqual([{ t: 'event', event: loaded(2) }]);
    finish({ ok: 'late' });
    await waitFor(() => posted.length === 2, 'the late answer');
    expect(posted).toEqual([
      { t: 'event', event: loaded(2) },
      { t: 'reply', id: 1, result: { ok: 'late' } },
    ]);
  });

  it('answers a load that fails in one post too, with the events it emitted before failing', () => {
    const failed = { error: { code: 'load_failed' as const, message: 'no' } };
    const { posted, request } = runtimeWith((runtime) => {
      runtime.emit(purged(1));
      return failed;
    });
    request('load');
    expect(posted).toEqual([{ t: 'reply', id: 1, result: failed, events: [purged(1)] }]);
  });

  it('an answer that cannot be copied still answers, its events posted first, in order', () => {
    const { posted, request } = runtimeWith((runtime) => {
      runtime.emit(loaded(2));
      runtime.emit(purged(1));
      return { ok: () => 'not data' };
    });
    request('load');
    expect(posted.map((m) => (Array.isArray(m) ? 'envelopes' : m.t))).toEqual(['event', 'event', 'reply']);
    expect(posted.slice(0, 2)).toEqual([
      { t: 'event', event: loaded(2) },
      { t: 'event', event: purged(1) },
    ]);
    expect(posted[2]).toMatchObject({ t: 'reply', id: 1, result: { error: { code: 'not_cloneable' } } });
  });

  it('keeps one post per event for other operations', () => {
    const { posted, request } = runtimeWith((runtime) => {
      runtime.emit(purged(1));
      return { ok: null };
    });
    request('purge');
    expect(posted).toEqual([
      { t: 'event', event: purged(1) },
      { t: 'reply', id: 1, result: { ok: null } },
    ]);
  });
});

let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

const version = (n: number) => `export const n = ${n};\nexport function f(): number { return n; }\n`;

describe.each(['thread', 'isolate'] as NodeKind[])('loads on a %s node', (kind) => {
  it('report their events to listeners before the load answers, in the order the node emitted them', async () => {
    // `forever` collects an old version as soon as nothing runs it: the second load purges the first.
    system = await System.start({ nodes: [{ name: 'a', kind, code: { retention: { kind: 'forever' }, purge: 'soft' } }] });
    const node = system.node('a');
    const seen = record(system);
    const modules = () => seen.filter((e) => e.type.startsWith('module_'));
    await node.load('m', version(1));
    expect(modules()).toEqual([{ type: 'module_loaded', node: 'a', module: 'm', version: 1 }]);
    const report = await node.load('m', version(2));
    expect(report).toMatchObject({ version: 2, previous: 1 });
    expect(modules().slice(1)).toEqual([
      { type: 'module_loaded', node: 'a', module: 'm', version: 2 },
      { type: 'module_purged', node: 'a', module: 'm', version: 1 },
    ]);
    await node.loadAtomic({ m: version(3), k: version(1) });
    expect(modules().slice(3)).toEqual([
      { type: 'module_loaded', node: 'a', module: 'm', version: 3 },
      { type: 'module_purged', node: 'a', module: 'm', version: 2 },
      { type: 'module_loaded', node: 'a', module: 'k', version: 1 },
    ]);
  });
});
