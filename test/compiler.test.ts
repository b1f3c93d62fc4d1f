/**
 * The compiler (src/compiler): stack traces name the source's own lines, imports stay live
 * property reads, and the host's compile path (on the host's thread, or the pool for big sources).
 */
import { compileFunction } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { transpile } from '../src/compiler/transpile.js';
import { compile, compiled, HOST_LIMIT } from '../src/host/compiler-pool.js';
import { CompileCache } from '../src/host/compile-cache.js';
import { LoadError } from '../src/errors.js';
import { localKernel } from './helpers/local-kernel.js';
import { until } from './helpers/wait.js';

/** Throws at line 9 of the TypeScript source, after imports, types and a multi-line signature. */
const THROWER = `import { send } from 'subnode';
import * as other from './other';
interface State { n: number; label: string }
type Reply = { ok: true } | { ok: false };
export function crash(
  state: State,
): Reply {
  void send; void other;
  throw new RangeError(\`boom \${state.label}\`);
}
`;

describe('line numbers', () => {
  it('the compiled body keeps every line of the source: a throw at line 9 shows the file at line 9', () => {
    const { js } = transpile('thrower', THROWER);
    const exports: Record<string, unknown> = {};
    // Compiled as a function body with no header lines (see the kernel platforms' compile hook).
    const factory = compileFunction(js, ['require', 'exports', 'module'], { filename: 'subnode://n/thrower@1.js' });
    factory(() => ({}), exports, { exports });
    let stack = '';
    try {
      (exports.crash as (s: object) => unknown)({ n: 1, label: 'x' });
    } catch (e) {
      stack = (e as Error).stack!;
    }
    expect(stack).toMatch(/^RangeError: boom x\n\s+at (Object\.)?crash \(subnode:\/\/n\/thrower@1\.js:9:\d+\)/);
  });

  it("through a kernel, the stack names the module and the version, at the source's own line", async () => {
    const k = localKernel('n');
    k.load('thrower', THROWER);
    const pid = k.kernel.spawn('thrower', 'crash', [{ n: 1, label: 'y' }]);
    for (let i = 0; i < 20 && !k.events.some((e) => e.type === 'process_exit' && e.pid === pid); i++) await new Promise((r) => setImmediate(r));
    const exit = k.events.find((e) => e.type === 'process_exit' && e.pid === pid) as { reason: { error: { stack: string } } };
    expect(exit.reason.error.stack).toContain('subnode://n/thrower@1.js:9:');
  });

  it("hazards and syntax errors are reported at the source's lines", () => {
    expect(() => transpile('bad', 'export const a = 1;\n\nexport function (x: number) {}\n')).toThrow(/bad\.ts:3:\d+ /);
    try {
      transpile('bad', 'const a: number = 1;\nfunction f() {\n  return 1 +;\n}\n');
    } catch (e) {
      expect(e).toBeInstanceOf(LoadError);
      expect((e as LoadError).details).toMatchObject({ module: 'bad', phase: 'transpile', diagnostics: [expect.stringMatching(/^bad\.ts:3:/)] });
    }
  });
});

describe('imports', () => {
  it('compile to property reads on the required namespace at each use, never to copies', () => {
    const { js } = transpile(
      'm',
      `
      import { loop as l } from './w';
      import * as w from './w';
      import def from './d';
      export function a() { return l(1) + w.loop(2) + def.f(); }
    `,
    );
    const ns: Record<string, unknown> = { loop: (x: number) => x, default: { f: () => 100 } };
    const exports: Record<string, unknown> = {};
    new Function('require', 'exports', 'module', js)(() => ns, exports, { exports });
    const a = exports.a as () => number;
    expect(a()).toBe(103);
    ns.loop = (x: number) => 10 * x; // a new version of 'w' is published into the same namespace
    expect(a()).toBe(130);
  });
});

describe('compile on the host', () => {
  const fifty = (n: number) => Array.from({ length: n }, (_, i) => `export function f${i}(x: number): number { return x * ${i}; }`).join('\n');

  it('small sources compile on this thread; big ones in the pool, with the same result', async () => {
    const small = fifty(50);
    expect(small.length).toBeLessThanOrEqual(HOST_LIMIT);
    expect(await compile('s', small, 's.ts')).toEqual(transpile('s', small, 's.ts'));
    const big = fifty(600);
    expect(big.length).toBeGreaterThan(HOST_LIMIT);
    expect(await compile('b', big, 'b.ts')).toEqual(transpile('b', big, 'b.ts'));
    await expect(compile('b', `${big}\nexport function (`, 'b.ts')).rejects.toThrow(LoadError);
  });
});

describe('the compile cache', () => {
  const hazardous = (tag: number) => `import { receive, on } from 'subnode';\n// ${tag}\nexport function loop() { return receive(on('x', () => loop())); }\n`;

  it('answers the same source again from the cache, a copy each time, and keys by module and language', async () => {
    const source = hazardous(Math.random());
    const before = compiled.size.entries;
    const first = await compile('h', source, 'h.ts');
    expect(first.hazards.length).toBeGreaterThan(0);
    expect(compiled.size.entries).toBe(before + 1);
    first.hazards.length = 0; // a caller changing its answer changes nobody else's
    const again = await compile('h', source, 'h.ts');
    expect(compiled.size.entries).toBe(before + 1);
    expect(again).toEqual(transpile('h', source, 'h.ts'));
    // Hazard messages name the module, and a .js file skips the TypeScript transform: other keys.
    expect((await compile('g', source, 'g.ts')).hazards[0]!.message).toContain("'./g'");
    expect(await compile('g', source, 'g.js')).toEqual(transpile('g', source, 'g.js'));
    // A syntax error is not kept: it throws each time, naming the filename asked for.
    await expect(compile('bad', 'export function (', 'one.ts')).rejects.toThrow(/one\.ts/);
    await expect(compile('bad', 'export function (', 'two.ts')).rejects.toThrow(/two\.ts/);
  });

  it('holds at most its bound of characters, dropping the least recently used first', () => {
    const cache = new CompileCache(1_000);
    const source = (tag: number) => `export const x${tag} = ${tag};`.padEnd(200, ' ');
    for (let tag = 0; tag < 4; tag++) cache.set('m', source(tag), 'm.ts', transpile('m', source(tag)));
    expect(cache.size.entries).toBe(2); // each is 200 characters of source and as many of output
    expect(cache.size.chars).toBeLessThanOrEqual(1_000);
    expect(cache.get('m', source(0), 'm.ts')).toBeUndefined();
    expect(cache.get('m', source(2), 'm.ts')).toBeDefined(); // now the most recently used
    cache.set('m', source(4), 'm.ts', transpile('m', source(4)));
    expect(cache.get('m', source(3), 'm.ts')).toBeUndefined();
    expect(cache.get('m', source(2), 'm.ts')).toBeDefined();
    const huge = 'x'.repeat(2_000);
    cache.set('m', huge, 'm.ts', { js: huge, hazards: [] });
    expect(cache.get('m', huge, 'm.ts')).toBeUndefined();
  });

  it('the same source under two module names (or languages) keeps both outputs: neither evicts the other', () => {
    const cache = new CompileCache(10_000);
    const source = hazardous(1);
    cache.set('a', source, 'a.ts', transpile('a', source, 'a.ts'));
    cache.set('b', source, 'b.ts', transpile('b', source, 'b.ts'));
    cache.set('b', source, 'b.js', transpile('b', source, 'b.js'));
    expect(cache.size.entries).toBe(3);
    expect(cache.get('a', source, 'a.ts')!.hazards[0]!.message).toContain("'./a'");
    expect(cache.get('b', source, 'b.ts')!.hazards[0]!.message).toContain("'./b'");
    expect(cache.get('b', source, 'b.js')).toEqual(transpile('b', source, 'b.js'));
    // Set again under a name it holds: replaced, not added.
    cache.set('a', source, 'a.ts', transpile('a', source, 'a.ts'));
    expect(cache.size.entries).toBe(3);
  });

  it('a node loading the same source again still makes a new version', async () => {
    const { System } = await import('../src/index.js');
    const system = await System.start({ nodes: [{ name: 'n' }] });
    try {
      const source = `export function f(): number { return ${Math.random()}; }`;
      const first = await system.node('n').load('same', source);
      const second = await system.node('n').load('same', source);
      expect([first.version, second.version]).toEqual([1, 2]);
      expect(second.previous).toBe(1);
    } finally {
      await system.stop();
    }
  });
});

describe('stack traces on real nodes', () => {
  it.each(['thread', 'isolate'] as const)("a %s node reports the TypeScript source's own line", async (kind) => {
    const { System } = await import('../src/index.js');
    const system = await System.start({ nodes: [{ name: 'n', kind, modules: { thrower: THROWER, other: 'export const x = 1;' } }] });
    try {
      const exits: { pid: string; reason: { error?: { stack?: string } } }[] = [];
      system.on('process_exit', (e) => exits.push(e as never));
      const pid = await system.node('n').spawn('thrower', 'crash', [{ n: 1, label: 'z' }]);
      const exit = await until('the process to exit', () => exits.find((e) => e.pid === pid));
      expect(exit.reason.error?.stack).toContain('thrower@1.js:9:');
    } finally {
      await system.stop();
    }
  });
});
