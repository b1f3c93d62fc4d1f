/**
 * `loadAtomic` (OTP's code:atomic_load/1: every new version prepared, then all current at once, or
 * none) and the `onLoad` hook (Erlang's -on_load: runs before the version becomes current; a throw
 * or an overrun fails the load and the previous version stays current).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LoadError, NotPurged } from '../src/errors.js';
import { System } from '../src/index.js';
import { localKernel } from './helpers/local-kernel.js';
import { js, summary } from './helpers/code-tools.js';
import { HOST, sent, tell, waitFor, waitWaiting } from './helpers/kernel-tools.js';

const a = (v: number, extra = '') => `
  import { receive, on, send } from 'subnode';
  import * as b from './b';
  export const vsn = ${v};
  export function ask() { return { a: vsn, b: b.vsn }; }
  export function loop(): unknown { return receive(on('ask', () => { send('${HOST}', ask()); return loop(); }), on('next', () => 'bye')); }
  ${extra}
`;
const b = (v: number) => `export const vsn = ${v};`;

function thrown(fn: () => unknown): any {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('atomic_load', () => {
  it('makes every new version current at once', () => {
    const k = localKernel();
    k.load('a', a(1));
    k.load('b', b(1));
    const reports = k.kernel.loadAtomic({ a: js('a', a(2)), b: js('b', b(2)) });
    expect(reports.map((r) => [r.module, r.version, r.previous])).toEqual([
      ['a', 2, 1],
      ['b', 2, 1],
    ]);
    expect(summary(k, 'a')).toEqual([
      [1, 'old', 0],
      [2, 'current', 0],
    ]);
    expect(summary(k, 'b')).toEqual([
      [1, 'old', 0],
      [2, 'current', 0],
    ]);
  });

  it('loads none when one module does not compile or its top level throws', () => {
    const k = localKernel();
    k.load('a', a(1));
    k.load('b', b(1));
    expect(thrown(() => k.kernel.loadAtomic({ a: js('a', a(2)), b: 'this is not javascript (' }))).toBeInstanceOf(LoadError);
    expect(thrown(() => k.kernel.loadAtomic({ a: js('a', a(2)), b: js('b', 'throw new Error("top level")') }))).toBeInstanceOf(LoadError);
    expect(summary(k, 'a')).toEqual([[1, 'current', 0]]);
    expect(summary(k, 'b')).toEqual([[1, 'current', 0]]);
  });

  it('not_purged: refused as a whole when old code still runs and the purge mode keeps it; kill purges', async () => {
    const k = localKernel();
    k.load('a', a(1));
    k.load('b', b(1));
    const pid = k.kernel.spawn('a', 'loop');
    await waitWaiting(k, pid);
    k.load('a', a(2)); // the process stays in a v1 (old)
    const error = thrown(() => k.kernel.loadAtomic({ b: js('b', b(2)), a: js('a', a(3)) }));
    expect(error).toBeInstanceOf(NotPurged);
    expect(error.details).toEqual({ modules: ['a'], lingering: [pid] });
    expect(summary(k, 'b')).toEqual([[1, 'current', 0]]);
    expect(summary(k, 'a')).toEqual([
      [1, 'old', 1],
      [2, 'current', 0],
    ]);
    const reports = k.kernel.loadAtomic({ b: js('b', b(2)), a: js('a', a(3)) }, { purge: 'kill' });
    expect(reports[1]).toMatchObject({ module: 'a', version: 3, previous: 2, purged: [1], killed: [pid] });
    expect(k.kernel.processInfo(pid)).toBeUndefined();
  });

  it('on_load_not_allowed: a module with onLoad cannot be part of an atomic load', () => {
    const k = localKernel();
    k.load('b', b(1));
    const error = thrown(() => k.kernel.loadAtomic({ a: js('a', a(1, 'export function onLoad() {}')), b: js('b', b(2)) }));
    expect(error).toBeInstanceOf(LoadError);
    expect(error.details).toMatchObject({ module: 'a', reason: 'on_load_not_allowed' });
    expect(summary(k, 'b')).toEqual([[1, 'current', 0]]);
  });
});

describe('onLoad', () => {
  it('runs before the version becomes current: a qualified call in it still enters the previous version', async () => {
    const k = localKernel();
    k.load('b', b(1));
    k.load('a', a(1));
    k.load('a', a(2, `import * as me from './a'; export function onLoad() { send('${HOST}', { onLoad: vsn, current: me.vsn }); }`));
    await waitFor(() => sent(k).length > 0, 'the onLoad report');
    expect(sent(k)).toEqual([{ onLoad: 2, current: 1 }]);
    expect(summary(k, 'a')).toEqual([
      [1, 'old', 0],
      [2, 'current', 0],
    ]);
  });

  it('a throwing onLoad fails the load; the previous version stays current', async () => {
    const k = localKernel();
    k.load('b', b(1));
    k.load('a', a(1));
    const pid = k.kernel.spawn('a', 'loop');
    await waitWaiting(k, pid);
    const error = thrown(() => k.load('a', a(2, 'export function onLoad() { throw new Error("no database"); }')));
    expect(error).toBeInstanceOf(LoadError);
    expect(error.message).toMatch(/no database/);
    expect(error.details).toMatchObject({ module: 'a', phase: 'on_load' });
    expect(summary(k, 'a')).toEqual([[1, 'current', 1]]);
    tell(k, pid, 'ask');
    await waitFor(() => sent(k).length === 1, 'the answer');
    expect(sent(k)).toEqual([{ a: 1, b: 1 }]);
  });

  it('an onLoad that runs past its deadline fails the load', () => {
    const k = localKernel();
    k.load('b', b(1));
    k.load('a', a(1));
    const slow = 'export function onLoad() { const end = Date.now() + 30; while (Date.now() < end) { /* busy */ } }';
    const error = thrown(() => k.kernel.load('a', js('a', a(2, slow)), { onLoadTimeoutMs: 5 }));
    expect(error).toBeInstanceOf(LoadError);
    expect(error.message).toMatch(/over its 5 ms limit/);
    expect(summary(k, 'a')).toEqual([[1, 'current', 0]]);
  });
});

describe('System: node.loadAtomic', () => {
  let system: System | undefined;
  afterEach(async () => {
    await system?.stop();
    system = undefined;
  });

  it('loads a set of modules on a node as one, and a restart replays them', async () => {
    system = await System.start({ nodes: [{ name: 'n', modules: { b: b(1), a: a(1) } }] });
    const node = system.node('n');
    const reports = await node.loadAtomic({ b: b(2), a: a(2) });
    expect(reports.map((r) => [r.module, r.version])).toEqual([
      ['b', 2],
      ['a', 2],
    ]);
    await expect(node.loadAtomic({ b: b(3), a: 'syntax error (' })).rejects.toBeInstanceOf(LoadError);
    const current = async () => (await node.modules()).map((m) => [m.name, m.versions.find((v) => v.state === 'current')?.version]);
    expect(await current()).toEqual([
      ['b', 2],
      ['a', 2],
    ]);
    await node.restart();
    const pid = await node.spawn('a', 'loop');
    expect(await node.processInfo(pid)).toBeTruthy();
    expect((await node.modules()).map((m) => m.name).sort()).toEqual(['a', 'b']);
  });
});
