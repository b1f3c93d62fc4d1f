/**
 * Kernel semantics, part 3: code. Versioned modules, old and current code, qualified calls
 * moving processes to the current version, independent namespaces per node, version
 * bookkeeping, and loads that fail without changing anything.
 */
import { describe, expect, it } from 'vitest';
import { localKernel, type LocalKernel } from './helpers/local-kernel.js';
import { HOST, errorOf, exitEvents, info, quiesce, receivedAtLeast, sent, tell, waitDead, waitWaiting } from './helpers/kernel-tools.js';
import { transpile } from '../src/compiler/transpile.js';
import type { LoadReport } from '../src/kernel/types.js';
import { BadArgument, LoadError, NotPurged, UnknownModule } from '../src/errors.js';

/**
 * A server module at version `vsn`. `loop` stays in its version on local calls; on 'upgrade'
 * it continues through the module namespace (`srv.loop`), i.e. in the current version; on
 * 'upgradeNext' it does the same through next(). 'get' reports the version it runs.
 */
const server = (vsn: number, extra = '') => `
  import { receive, on, send, next } from 'subnode';
  import * as srv from './srv';
  export const vsn = ${vsn};
  export function start(n: number) { return loop(n); }
  export function loop(n: number): unknown {
    return receive(
      on('get', () => { send('${HOST}', { vsn, n }); return loop(n + 1); }),
      on('upgrade', () => srv.loop(n)),
      on('upgradeNext', () => next(srv.loop, n)),
      on('stop', () => 'stopped'),
    );
  }
  ${extra}
`;

const versionsOf = (k: LocalKernel, pid: string) => info(k, pid)?.versions;
const moduleInfo = (k: LocalKernel, name: string) => k.kernel.modules().find((m) => m.name === name);
const summary = (k: LocalKernel, name: string) => moduleInfo(k, name)?.versions.map((v) => [v.version, v.state, v.processes]);

async function ask(k: LocalKernel, pid: string): Promise<unknown> {
  const n = sent(k).length;
  tell(k, pid, 'get');
  return (await receivedAtLeast(k, n + 1))[n];
}

// ---------------------------------------------------------------------------------------------

describe('versions', () => {
  it('numbers versions per module from 1; the previous becomes old', async () => {
    const k = localKernel();
    expect(k.load('srv', server(1))).toMatchObject({ module: 'srv', version: 1 });
    expect(k.load('other', `export const x = 1;`)).toMatchObject({ module: 'other', version: 1 });
    expect(k.load('srv', server(2))).toMatchObject({ module: 'srv', version: 2 });
    expect(summary(k, 'srv')).toEqual([
      [1, 'old', 0],
      [2, 'current', 0],
    ]);
    expect(summary(k, 'other')).toEqual([[1, 'current', 0]]);
    expect(k.load('srv', server(3)).version).toBe(3);
    expect(k.events.filter((e) => e.type === 'module_loaded')).toEqual([
      { type: 'module_loaded', node: 'a', module: 'srv', version: 1 },
      { type: 'module_loaded', node: 'a', module: 'other', version: 1 },
      { type: 'module_loaded', node: 'a', module: 'srv', version: 2 },
      { type: 'module_loaded', node: 'a', module: 'srv', version: 3 },
    ]);
    const loadedAt = moduleInfo(k, 'srv')!.versions.map((v) => v.loadedAt);
    expect(loadedAt).toEqual([...loadedAt].sort((a, b) => a - b));
  });

  it('spawn enters the current version', async () => {
    const k = localKernel();
    k.load('srv', server(1));
    const p1 = k.kernel.spawn('srv', 'start', [0]);
    k.load('srv', server(2));
    const p2 = k.kernel.spawn('srv', 'start', [0]);
    expect(await ask(k, p1)).toEqual({ vsn: 1, n: 0 });
    expect(await ask(k, p2)).toEqual({ vsn: 2, n: 0 });
    expect(versionsOf(k, p1)).toEqual([{ module: 'srv', version: 1, state: 'old' }]);
    expect(versionsOf(k, p2)).toEqual([{ module: 'srv', version: 2, state: 'current' }]);
  });

  it('a process in old code stays there on local calls and moves to current on a qualified call', async () => {
    const k = localKernel();
    k.load('srv', server(1));
    const pid = k.kernel.spawn('srv', 'start', [0]);
    await waitWaiting(k, pid);
    expect(versionsOf(k, pid)).toEqual([{ module: 'srv', version: 1, state: 'current' }]);
    k.load('srv', server(2));
    expect(versionsOf(k, pid)).toEqual([{ module: 'srv', version: 1, state: 'old' }]);
    // Local calls: still version 1, however many times.
    expect(await ask(k, pid)).toEqual({ vsn: 1, n: 0 });
    expect(await ask(k, pid)).toEqual({ vsn: 1, n: 1 });
    expect(versionsOf(k, pid)).toEqual([{ module: 'srv', version: 1, state: 'old' }]);
    expect(summary(k, 'srv')).toEqual([
      [1, 'old', 1],
      [2, 'current', 0],
    ]);
    // A qualified call: version 2, state kept.
    tell(k, pid, 'upgrade');
    await quiesce();
    expect(versionsOf(k, pid)).toEqual([{ module: 'srv', version: 2, state: 'current' }]);
    expect(await ask(k, pid)).toEqual({ vsn: 2, n: 2 });
    expect(summary(k, 'srv')).toEqual([
      [1, 'old', 0],
      [2, 'current', 1],
    ]);
  });

  it('next() through the namespace also moves the process to the current version', async () => {
    const k = localKernel();
    k.load('srv', server(1));
    const pid = k.kernel.spawn('srv', 'start', [10]);
    await waitWaiting(k, pid);
    k.load('srv', server(2));
    tell(k, pid, 'upgradeNext');
    await quiesce();
    expect(versionsOf(k, pid)).toEqual([{ module: 'srv', version: 2, state: 'current' }]);
    expect(await ask(k, pid)).toEqual({ vsn: 2, n: 10 });
  });

  it('a long-lived process follows upgrade after upgrade, keeping its state', async () => {
    const k = localKernel();
    k.load('srv', server(1));
    const pid = k.kernel.spawn('srv', 'start', [0]);
    await waitWaiting(k, pid);
    for (let vsn = 2; vsn <= 5; vsn++) {
      k.load('srv', server(vsn));
      expect(versionsOf(k, pid)).toEqual([{ module: 'srv', version: vsn - 1, state: 'old' }]);
      tell(k, pid, vsn % 2 ? 'upgrade' : 'upgradeNext');
      expect(await ask(k, pid)).toEqual({ vsn, n: vsn - 2 });
      expect(versionsOf(k, pid)).toEqual([{ module: 'srv', version: vsn, state: 'current' }]);
    }
  });

  it('a named import from another module calls its current version', async () => {
    const k = localKernel();
    k.load('lib', `export function version() { return 1; }`);
    k.load(
      'user',
      `
      import { receive, on, send } from 'subnode';
      import { version } from './lib';
      export function loop(): unknown {
        return receive(on('ask', () => { send('${HOST}', version()); return loop(); }));
      }
    `,
    );
    const pid = k.kernel.spawn('user', 'loop');
    await waitWaiting(k, pid);
    tell(k, pid, 'ask');
    await receivedAtLeast(k, 1);
    k.load('lib', `export function version() { return 2; }`);
    tell(k, pid, 'ask');
    expect(await receivedAtLeast(k, 2)).toEqual([1, 2]);
    // The caller itself did not change version.
    expect(versionsOf(k, pid)).toEqual([{ module: 'user', version: 1, state: 'current' }]);
  });

  it('a module may be loaded after the modules that import it', async () => {
    const k = localKernel();
    k.load(
      'user',
      `
      import { receive, on, send } from 'subnode';
      import * as lib from './lib.js';
      export function loop(): unknown {
        return receive(on('ask', () => {
          let answer: unknown;
          try { answer = lib.greet(); } catch { answer = 'missing'; }
          send('${HOST}', answer);
          return loop();
        }));
      }
    `,
    );
    const pid = k.kernel.spawn('user', 'loop');
    tell(k, pid, 'ask');
    await receivedAtLeast(k, 1);
    k.load('lib', `export function greet() { return 'hello'; }`);
    tell(k, pid, 'ask');
    expect(await receivedAtLeast(k, 2)).toEqual(['missing', 'hello']);
  });

  it('a qualified call to a function the new version no longer exports crashes the caller (like undef)', async () => {
    const k = localKernel();
    k.load('srv', server(1));
    const pid = k.kernel.spawn('srv', 'start', [0]);
    await waitWaiting(k, pid);
    k.load('srv', `export const vsn = 2;`);
    tell(k, pid, 'upgrade');
    await waitDead(k, pid);
    // A TypeError (calling undefined), or the kernel's clearer UnknownFunction.
    expect(errorOf(exitEvents(k, pid)[0]?.reason)?.name).toMatch(/^(TypeError|UnknownFunction)$/);
  });

  it('a process calling into another module is counted in that module while it waits there', async () => {
    const k = localKernel();
    k.load(
      'waiter',
      `
      import { receive, on, send } from 'subnode';
      export function waitFor(tag: string, then: () => unknown): unknown {
        return receive(on(tag, then));
      }
    `,
    );
    k.load(
      'main',
      `
      import { send } from 'subnode';
      import * as waiter from './waiter';
      export function start(): unknown {
        return waiter.waitFor('go', () => { send('${HOST}', 'went'); return 'done'; });
      }
    `,
    );
    const pid = k.kernel.spawn('main', 'start');
    expect(versionsOf(k, pid)).toEqual([{ module: 'main', version: 1, state: 'current' }]);
    await waitWaiting(k, pid);
    expect(versionsOf(k, pid)).toEqual([{ module: 'waiter', version: 1, state: 'current' }]);
    expect(summary(k, 'main')).toEqual([[1, 'current', 0]]);
    expect(summary(k, 'waiter')).toEqual([[1, 'current', 1]]);
    tell(k, pid, 'go');
    expect(await receivedAtLeast(k, 1)).toEqual(['went']);
    await waitDead(k, pid);
    expect(summary(k, 'waiter')).toEqual([[1, 'current', 0]]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('modules() bookkeeping', () => {
  it('reports versions, states and process counts', async () => {
    const k = localKernel();
    k.load('srv', server(1));
    const pids = [0, 1, 2].map((i) => k.kernel.spawn('srv', 'start', [i]));
    for (const pid of pids) await waitWaiting(k, pid);
    expect(summary(k, 'srv')).toEqual([[1, 'current', 3]]);
    k.load('srv', server(2));
    expect(summary(k, 'srv')).toEqual([
      [1, 'old', 3],
      [2, 'current', 0],
    ]);
    tell(k, pids[0]!, 'upgrade');
    await quiesce();
    expect(summary(k, 'srv')).toEqual([
      [1, 'old', 2],
      [2, 'current', 1],
    ]);
    tell(k, pids[1]!, 'stop');
    await waitDead(k, pids[1]!);
    expect(summary(k, 'srv')).toEqual([
      [1, 'old', 1],
      [2, 'current', 1],
    ]);
    k.kernel.exit(pids[2]! as never, 'kill');
    await waitDead(k, pids[2]!);
    expect(summary(k, 'srv')).toEqual([
      [1, 'old', 0],
      [2, 'current', 1],
    ]);
    expect(k.kernel.modules().map((m) => m.name)).toEqual(['srv']);
  });

  it('drops an old version with no processes on the next load', async () => {
    const k = localKernel();
    k.load('srv', server(1));
    k.load('srv', server(2));
    k.load('srv', server(3));
    // Version 1 ran nothing: dropped when 3 came; 2 is the newest old version.
    expect(summary(k, 'srv')).toEqual([
      [2, 'old', 0],
      [3, 'current', 0],
    ]);
    k.load('srv', server(4));
    expect(summary(k, 'srv')).toEqual([
      [3, 'old', 0],
      [4, 'current', 0],
    ]);

    // An old version that emptied (its process moved on) goes on the next load too.
    const mover = k.kernel.spawn('srv', 'start', [0]); // in version 4
    await waitWaiting(k, mover);
    k.load('srv', server(5));
    expect(summary(k, 'srv')).toEqual([
      [4, 'old', 1],
      [5, 'current', 0],
    ]);
    tell(k, mover, 'upgrade');
    await quiesce();
    expect(versionsOf(k, mover)).toEqual([{ module: 'srv', version: 5, state: 'current' }]);
    k.load('srv', server(6));
    expect(summary(k, 'srv')).toEqual([
      [5, 'old', 1],
      [6, 'current', 0],
    ]);
  });

  it('never drops an old version under a process that still runs it', async () => {
    const k = localKernel();
    k.load('srv', server(1));
    const lingering = k.kernel.spawn('srv', 'start', [0]);
    await waitWaiting(k, lingering);
    k.load('srv', server(2));
    const before = k.kernel.modules();
    // Loading a third version either keeps version 1 (several old versions) or is refused
    // with NotPurged (Erlang's one old version: code:load_file gives not_purged); it must not
    // drop version 1 from under the process, nor kill it.
    let refused: unknown;
    try {
      k.load('srv', server(3));
    } catch (e) {
      refused = e;
    }
    if (refused) {
      expect(refused).toBeInstanceOf(NotPurged);
      expect(k.kernel.modules()).toEqual(before);
    } else {
      expect(summary(k, 'srv')).toEqual([
        [1, 'old', 1],
        [2, 'old', 0],
        [3, 'current', 0],
      ]);
    }
    expect(versionsOf(k, lingering)).toEqual([{ module: 'srv', version: 1, state: 'old' }]);
    expect(await ask(k, lingering)).toEqual({ vsn: 1, n: 0 });
    // Once the process has moved on, the next load drops version 1.
    tell(k, lingering, 'upgrade');
    const latest = refused ? 2 : 3;
    expect(await ask(k, lingering)).toEqual({ vsn: latest, n: 1 });
    k.load('srv', server(9));
    expect(summary(k, 'srv')!.map(([v]) => v)).not.toContain(1);
    expect(summary(k, 'srv')!.at(-1)).toEqual([latest + 1, 'current', 0]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('independent nodes', () => {
  it('two kernels hold different versions of the same module independently', async () => {
    const ka = localKernel('a');
    const kb = localKernel('b');
    ka.load('srv', server(1));
    kb.load('srv', server(1));
    kb.load('srv', server(2));
    kb.load('srv', server(3));
    expect(summary(ka, 'srv')).toEqual([[1, 'current', 0]]);
    expect(summary(kb, 'srv')).toEqual([
      [2, 'old', 0],
      [3, 'current', 0],
    ]);
    const pa = ka.kernel.spawn('srv', 'start', [0]);
    const pb = kb.kernel.spawn('srv', 'start', [0]);
    expect(pa).toBe('<a.1>');
    expect(pb).toBe('<b.1>');
    expect(await ask(ka, pa)).toEqual({ vsn: 1, n: 0 });
    expect(await ask(kb, pb)).toEqual({ vsn: 3, n: 0 });
    // Loading on a does not touch b.
    ka.load('srv', server(7));
    expect(kb.kernel.modules()).toHaveLength(1);
    expect(summary(kb, 'srv')).toEqual([
      [2, 'old', 0],
      [3, 'current', 1],
    ]);
    tell(kb, pb, 'upgrade');
    expect(await ask(kb, pb)).toEqual({ vsn: 3, n: 1 });
    tell(ka, pa, 'upgrade');
    expect(await ask(ka, pa)).toEqual({ vsn: 7, n: 1 });
    // A module loaded on one node only does not exist on the other.
    ka.load('onlyA', `export function f() { return 1; }`);
    expect(() => kb.kernel.spawn('onlyA', 'f')).toThrow(UnknownModule);
  });

  it('module state (top-level variables) is per version and per node', async () => {
    const src = `
      import { send } from 'subnode';
      let count = 0;
      export function bump() { count++; send('${HOST}', count); }
    `;
    const ka = localKernel('a');
    const kb = localKernel('b');
    ka.load('ctr', src);
    kb.load('ctr', src);
    ka.kernel.spawn('ctr', 'bump');
    await receivedAtLeast(ka, 1);
    ka.kernel.spawn('ctr', 'bump');
    kb.kernel.spawn('ctr', 'bump');
    expect(await receivedAtLeast(ka, 2)).toEqual([1, 2]);
    expect(await receivedAtLeast(kb, 1)).toEqual([1]);
    ka.load('ctr', src); // a fresh version starts from its own top level
    ka.kernel.spawn('ctr', 'bump');
    expect(await receivedAtLeast(ka, 3)).toEqual([1, 2, 1]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('failed loads', () => {
  it('a syntax error throws LoadError; the previous version stays current; processes are untouched', async () => {
    const k = localKernel();
    k.load('srv', server(1));
    const pid = k.kernel.spawn('srv', 'start', [0]);
    await waitWaiting(k, pid);
    const before = k.kernel.modules();
    // Through the helper (transpile reports the error) and straight to the kernel (compile does).
    expect(() => k.load('srv', 'export function ( {')).toThrow(LoadError);
    let thrown: unknown;
    try {
      k.kernel.load('srv', 'function ( {');
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(LoadError);
    expect((thrown as LoadError).code).toBe('load_failed');
    expect((thrown as LoadError).details).toMatchObject({ module: 'srv', phase: 'compile' });
    expect(k.kernel.modules()).toEqual(before);
    expect(versionsOf(k, pid)).toEqual([{ module: 'srv', version: 1, state: 'current' }]);
    expect(await ask(k, pid)).toEqual({ vsn: 1, n: 0 });
    expect(await ask(k, k.kernel.spawn('srv', 'start', [5]))).toEqual({ vsn: 1, n: 5 });
    // The next good load is the next version.
    expect(k.load('srv', server(2)).version).toBe(2);
    expect(k.events.filter((e) => e.type === 'module_loaded')).toHaveLength(2);
  });

  it('a top level that throws gives LoadError (phase evaluate) and changes nothing', async () => {
    const k = localKernel();
    k.load('srv', server(1));
    const pid = k.kernel.spawn('srv', 'start', [0]);
    await waitWaiting(k, pid);
    const before = k.kernel.modules();
    let thrown: unknown;
    try {
      k.load('srv', server(2, `const broken: any = undefined; broken.field.access;`));
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(LoadError);
    expect((thrown as Error).message).toContain('TypeError');
    expect((thrown as LoadError).details).toMatchObject({ module: 'srv', phase: 'evaluate' });
    expect(k.kernel.modules()).toEqual(before);
    expect(await ask(k, pid)).toEqual({ vsn: 1, n: 0 });
    // The namespace still points at version 1: a qualified call stays in version 1.
    tell(k, pid, 'upgrade');
    expect(await ask(k, pid)).toEqual({ vsn: 1, n: 1 });
    expect(versionsOf(k, pid)).toEqual([{ module: 'srv', version: 1, state: 'current' }]);
  });

  it('a failed first load leaves no module behind', () => {
    const k = localKernel();
    expect(() => k.load('fresh', `throw new Error('nope');`)).toThrow(LoadError);
    expect(k.kernel.modules()).toEqual([]);
    expect(() => k.kernel.spawn('fresh', 'f')).toThrow(UnknownModule);
    expect(k.load('fresh', `export function f() { return 1; }`).version).toBe(1);
  });

  it('exports that are not an object give LoadError', () => {
    const k = localKernel();
    expect(() => k.kernel.load('m', 'module.exports = 5;')).toThrow(LoadError);
    expect(() => k.kernel.load('m', 'module.exports = null;')).toThrow(LoadError);
    expect(k.kernel.modules()).toEqual([]);
  });

  it('a module cannot import Node built-ins or packages by path', () => {
    const k = localKernel();
    expect(() => k.load('m', `import * as fs from 'node:fs'; export const x = fs;`)).toThrow(LoadError);
    expect(() => k.load('m', `import * as x from 'some/package'; export const y = x;`)).toThrow(LoadError);
    expect(k.kernel.modules()).toEqual([]);
  });

  it('bad module names and sources throw BadArgument', () => {
    const k = localKernel();
    const js = transpile('m', `export const x = 1;`).js;
    for (const name of ['', 'bad name', '1abc', 'a/b', 'a.b', 'subnode', 'subnode/process', 'x'.repeat(129), 42]) {
      expect(() => k.kernel.load(name as string, js), JSON.stringify(name)).toThrow(BadArgument);
    }
    expect(() => k.kernel.load('ok', 42 as never)).toThrow(BadArgument);
    expect(k.kernel.modules()).toEqual([]);
    // The edge of what is allowed.
    expect((k.kernel.load('a-b_c$1', js) as LoadReport).version).toBe(1);
    expect((k.kernel.load('x'.repeat(128), js) as LoadReport).version).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------

describe('re-exports', () => {
  const IMPL = (vsn: number) => `
    import { next } from 'subnode';
    export const vsn = ${vsn};
    export function version() { return vsn; }
    export function spin(): unknown { return next(spin); }
  `;

  it('a process running a function that another module re-exports is attributed to the defining module', async () => {
    const k = localKernel();
    k.load('impl', IMPL(1));
    k.load('facade', `export { version, spin } from './impl';`);
    const pid = k.kernel.spawn('impl', 'spin');
    await quiesce(20);
    // The process loops with a local next() in impl: it runs impl's code, in impl's version.
    const where = versionsOf(k, pid);
    const counts = [summary(k, 'impl'), summary(k, 'facade')];
    k.kernel.exit(pid as never, 'kill');
    await waitDead(k, pid);
    expect(where).toEqual([{ module: 'impl', version: 1, state: 'current' }]);
    expect(counts).toEqual([[[1, 'current', 1]], [[1, 'current', 0]]]);
  });

  it('a re-export is a live binding: through the re-exporting module, calls enter the current version', async () => {
    const k = localKernel();
    k.load('impl', IMPL(1));
    k.load('facade', `export { version } from './impl';`);
    k.load(
      'client',
      `
      import { send } from 'subnode';
      import { version } from './facade';
      export function ask() { send('${HOST}', version()); }
    `,
    );
    k.kernel.spawn('client', 'ask');
    await receivedAtLeast(k, 1);
    k.load('impl', IMPL(2));
    k.kernel.spawn('client', 'ask');
    expect(await receivedAtLeast(k, 2)).toEqual([1, 2]);
  });
});
