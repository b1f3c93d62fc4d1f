/**
 * Orderly shutdown: a node's trees stopped from the top (each supervisor ends its children in
 * reverse start order with their shutdown timeouts, trapping servers run `terminate`), bounded by
 * a deadline after which the rest is killed; `system.stop({ graceful })` and `node.stop({ graceful })`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Pid } from '../src/kernel/pid.js';
import { System } from '../src/index.js';
import { HOST, sent } from './helpers/kernel-tools.js';
import { child, supKernel } from './helpers/sup-tools.js';

/** A server that traps exits and reports its terminate(reason) to `report`. */
const TSERVER = `
  import { send, trapExit } from 'subnode';
  export function init(id: string, report: string) { trapExit(true); return { id, report }; }
  export function handleCall(r: any, _f: any, s: any) { return { reply: r, state: s }; }
  export function terminate(reason: unknown, s: any) { send(s.report, { terminated: s.id, reason }); }
`;

const SUP = 'export function init(r: any) { return r; }';
const tchild = (id: string, report: string) => ({ id, start: { server: 'tserver', args: [id, report] } });

describe('orderlyStop (kernel)', () => {
  it('stops a tree from the top: children in reverse start order, terminate callbacks, a stubborn child killed at its timeout', async () => {
    const k = supKernel();
    k.load('tserver', TSERVER);
    const top = k.kernel.startSupervisor('sup', [
      {
        children: [
          tchild('a', HOST),
          tchild('b', HOST),
          { id: 'nested', start: { supervisor: 'sup', args: [{ children: [tchild('c', HOST)] }] } },
          { id: 'stubborn', start: { module: 'worker', fn: 'stubborn' }, shutdown: 100 },
        ],
      },
    ])!;
    const lone = k.kernel.startBehaviour('server', 'tserver', ['lone', HOST]);
    const t0 = performance.now();
    const report = await k.kernel.orderlyStop(5000);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(95);
    expect(report).toEqual({ stopped: 7, killed: [] });
    // The lone server started last is stopped first; then the tree, newest child first.
    expect(sent(k)).toEqual([
      { terminated: 'lone', reason: 'shutdown' },
      { terminated: 'c', reason: 'shutdown' },
      { terminated: 'b', reason: 'shutdown' },
      { terminated: 'a', reason: 'shutdown' },
    ]);
    expect(k.kernel.processes().filter((p) => p.initial !== 'orderly_stop')).toEqual([]);
    void top;
    void lone;
  });

  it('kills what is left at the deadline', async () => {
    const k = supKernel();
    const stubborn = k.kernel.spawn('worker', 'stubborn');
    const plain = k.kernel.spawn('worker', 'start');
    const report = await k.kernel.orderlyStop(50);
    expect(report).toEqual({ stopped: 1, killed: [stubborn] });
    expect(k.kernel.processInfo(plain as Pid)).toBeUndefined();
  });

  it('a supervisor child whose parent is a raw process ends with it', async () => {
    const k = supKernel();
    k.load('tserver', TSERVER);
    k.load(
      'owner',
      `
      import { supervisor, receive } from 'subnode';
      export function start(spec: any) { supervisor.startLink('sup', [spec]); return receive(() => 'x'); }
    `,
    );
    k.kernel.spawn('owner', 'start', [{ children: [tchild('a', HOST)] }]);
    const report = await k.kernel.orderlyStop(1000);
    expect(report.killed).toEqual([]);
    expect(sent(k)).toEqual([{ terminated: 'a', reason: 'shutdown' }]);
  });
});

describe('graceful stop of a System', () => {
  let system: System | undefined;
  afterEach(async () => {
    await system?.stop();
    system = undefined;
  });

  it('system.stop({ graceful }) runs the trees down in order; terminate callbacks reach the host', async () => {
    system = await System.start({});
    const inbox = system.inbox();
    await system.addNode({
      name: 'a',
      modules: { sup: SUP, tserver: TSERVER },
      start: [{ supervisor: 'sup', args: [{ strategy: 'one_for_all', children: [tchild('a1', inbox.pid), tchild('a2', inbox.pid)] }] }],
    });
    await system.addNode({
      name: 'b',
      modules: { sup: SUP, tserver: TSERVER },
      start: [{ supervisor: 'sup', args: [{ children: [tchild('b1', inbox.pid)] }] }],
    });
    const got: unknown[] = [];
    const all = Promise.all([0, 1, 2].map(() => inbox.receive((m: any) => 'terminated' in m, 10_000).then((m) => got.push(m))));
    await system.stop({ graceful: true, timeoutMs: 5000 });
    await all;
    expect(got).toContainEqual({ terminated: 'b1', reason: 'shutdown' });
    const onA = got.filter((m: any) => m.terminated.startsWith('a'));
    expect(onA).toEqual([
      { terminated: 'a2', reason: 'shutdown' },
      { terminated: 'a1', reason: 'shutdown' },
    ]);
    expect(system.nodes().every((n) => n.status === 'stopped')).toBe(true);
    system = undefined;
  });

  it('node.stop({ graceful }) and orderlyStop on one node; stop() without options stays fast', async () => {
    system = await System.start({
      nodes: [
        {
          name: 'a',
          modules: {
            sup: SUP,
            tserver: TSERVER,
            worker: 'import { receive, trapExit } from "subnode"; export function deaf(): unknown { trapExit(true); return receive(() => deaf()); }',
          },
        },
      ],
    });
    const node = system.node('a');
    const inbox = system.inbox();
    await node.startSupervisor('sup', [{ children: [tchild('x', inbox.pid)] }]);
    const deaf = await node.spawn('worker', 'deaf');
    const report = await node.orderlyStop(100);
    expect(report.killed).toEqual([deaf]);
    expect(await inbox.receive((m: any) => 'terminated' in m)).toEqual({ terminated: 'x', reason: 'shutdown' });
    await node.startSupervisor('sup', [{ children: [tchild('y', inbox.pid)] }]);
    const waiting = inbox.receive((m: any) => 'terminated' in m);
    await node.stop({ graceful: true, timeoutMs: 1000 });
    expect(await waiting).toEqual({ terminated: 'y', reason: 'shutdown' });
    expect(node.status).toBe('stopped');
    await node.restart();
    await node.startSupervisor('sup', [{ children: [tchild('z', inbox.pid)] }]);
    const t0 = performance.now();
    await system.stop();
    expect(performance.now() - t0).toBeLessThan(1000);
    system = undefined;
  });
});

void child;
