/**
 * What a new user meets first: module sources named relative to the code naming them, isolate
 * nodes that say what they lack, configs and plans whose problems are named, and JSON Schemas that
 * match the checks.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { System, Unavailable, LoadError } from '../src/index.js';
import { readSource } from '../src/host/source.js';
import { jsonSchemas } from '../src/host/schema/json-schema.js';
import { checkConfig } from '../src/cli/config.js';
import { ISOLATED_VM_ENV } from '../src/host/isolate-support.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const COUNTER = fileURLToPath(new URL('../examples/modules/v1/counter.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'subnode-adoption-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('module sources', () => {
  const text = readFileSync(COUNTER, 'utf8');
  it('{ path, base } resolves against a file URL, a URL, or a directory; else the cwd', () => {
    expect(readSource('c', { path: '../examples/modules/v1/counter.ts', base: import.meta.url })).toEqual({ text, filename: COUNTER });
    expect(readSource('c', { path: './v1/counter.ts', base: new URL('../examples/modules/', import.meta.url) }).filename).toBe(COUNTER);
    expect(readSource('c', { path: 'v1/counter.ts', base: join(ROOT, 'examples/modules') }).filename).toBe(COUNTER);
    expect(readSource('c', { path: COUNTER, base: '/elsewhere' }).filename).toBe(COUNTER); // absolute: base unused
    expect(readSource('c', { path: relative(process.cwd(), COUNTER) }).filename).toBe(COUNTER);
    expect(readSource('c', pathToFileURL(COUNTER)).filename).toBe(COUNTER);
    expect(readSource('c', { code: 'export const x = 1;' })).toEqual({ text: 'export const x = 1;', filename: 'c.ts' });
    expect(readSource('c', 'export const x = 1;')).toEqual({ text: 'export const x = 1;', filename: 'c.ts' }); // load(m, text) stays
    expect(() => readSource('c', { path: 'x.ts', base: 'https://example.com/a.js' })).toThrow(LoadError);
    expect(() => readSource('c', { path: 'nope.ts', base: import.meta.url })).toThrow(/cannot read .*test\/nope\.ts/);
  });

  it('a node loads and upgrades by { path, base } and { code }', async () => {
    const system = await System.start({ nodes: [{ name: 'a', modules: { counter: { path: '../examples/modules/v1/counter.ts', base: import.meta.url } } }] });
    try {
      const pid = await system.node('a').startServer('counter', [1]);
      const report = await system.upgrade({
        modules: [{ module: 'counter', source: { path: 'v2/counter.ts', base: new URL('../examples/modules/', import.meta.url) }, extra: { note: 'by base' } }],
      });
      expect(report.ok, JSON.stringify(report)).toBe(true);
      expect(await system.call(pid, 'info')).toEqual({ count: 1, changedAt: 'by base', vsn: '2.0.0' });
      expect((await system.node('a').load('extra', { code: 'export const x = 1;' })).version).toBe(1);
    } finally {
      await system.stop();
    }
  });
});

describe('isolate nodes say what they lack', () => {
  afterEach(() => {
    delete process.env[ISOLATED_VM_ENV];
  });

  it('no isolated-vm: Unavailable, saying how to get it for each Node version; thread nodes still start', async () => {
    process.env[ISOLATED_VM_ENV] = 'isolated-vm-that-is-not-installed';
    const error = await System.start({ nodes: [{ name: 't' }, { name: 'sb', kind: 'isolate' }] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Unavailable);
    expect(error).toMatchObject({ code: 'unavailable', details: { node: 'sb', missing: 'isolated-vm' } });
    const message = (error as Error).message;
    expect(message).toContain("it is not installed (cannot find 'isolated-vm-that-is-not-installed')");
    expect(message).toContain('npm install isolated-vm');
    expect(message).toMatch(/Node 22 and 24 .*isolated-vm 6, prebuilt/);
    expect(message).toMatch(/Node 20 .*isolated-vm 5, which builds from source and needs python3, make and g\+\+/);
    const system = await System.start({ nodes: [{ name: 't' }] });
    try {
      await expect(system.addNode({ name: 'sb', kind: 'isolate' })).rejects.toBeInstanceOf(Unavailable);
      expect(system.nodes().map((n) => n.name)).toEqual(['t']);
    } finally {
      await system.stop();
    }
  });

  it('no --no-node-snapshot: Unavailable, saying how to run (a real node process, against dist)', async () => {
    const script = join(dir, 'no-flag.mjs');
    writeFileSync(
      script,
      `
      import { System } from ${JSON.stringify(pathToFileURL(join(ROOT, 'dist/src/index.js')).href)};
      try {
        await System.start({ nodes: [{ name: 'sb', kind: 'isolate' }] });
        console.log('started');
      } catch (error) {
        console.log(JSON.stringify({ name: error.name, code: error.code, details: error.details, message: error.message }));
      }
    `,
    );
    const env = { ...process.env, NODE_OPTIONS: '' };
    const child = spawn(process.execPath, [script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d;
    });
    const code = await new Promise<number | null>((done) => child.on('exit', done));
    expect(code, err).toBe(0);
    const result = JSON.parse(out) as { name: string; code: string; details: unknown; message: string };
    expect(result).toMatchObject({ name: 'Unavailable', code: 'unavailable', details: { node: 'sb', missing: '--no-node-snapshot' } });
    expect(result.message).toContain('node --no-node-snapshot app.js');
    expect(result.message).toContain('NODE_OPTIONS=--no-node-snapshot');
  });
});

describe('configs and plans', () => {
  it('a config: unknown fields with a did-you-mean, sources as paths or { code }', () => {
    const file = join(dir, 'config.json');
    const problems = (raw: unknown): string[] => {
      try {
        checkConfig(raw, file);
        return [];
      } catch (error) {
        return (error as { problems: string[] }).problems;
      }
    };
    expect(problems({ node: [{ name: 'a' }] })).toEqual([
      'nodes: must be a list of nodes [{ name, ... }], got nothing',
      "node: unknown field (did you mean 'nodes'?)",
    ]);
    expect(
      problems({
        nodes: [{ name: 'a', modules: { c: { code: 'export const = ;' }, d: { path: 'x.ts', bse: '.' } }, start: [{ module: 'c', fn: 'f', sever: true }] }],
      }),
    ).toEqual([
      "nodes[0].modules.d.bse: unknown field (did you mean 'base'?)",
      "nodes[0].start[0].sever: unknown field (did you mean 'server'?)",
      expect.stringMatching(/^nodes\[0\]\.modules\.c: the code does not compile: module 'c' has syntax errors/),
    ]);
    const ok = checkConfig(
      {
        $schema: './node_modules/subnode/schema/config.schema.json',
        nodes: [{ name: 'a', modules: { c: { code: 'export const x = 1;' }, d: { path: '../examples/modules/v1/counter.ts', base: import.meta.url } } }],
      },
      file,
    );
    expect(ok.nodes[0]!.modules).toEqual({ c: { code: 'export const x = 1;' }, d: { path: COUNTER } });
  });

  it('the committed JSON Schemas are what the generator writes (npm run schema)', () => {
    for (const [name, schema] of Object.entries(jsonSchemas())) {
      const committed = JSON.parse(readFileSync(join(ROOT, 'schema', name), 'utf8')) as unknown;
      expect(committed, `schema/${name} is stale: run npm run schema`).toEqual(JSON.parse(JSON.stringify(schema)));
    }
    expect(Object.keys(jsonSchemas())).toEqual(['config.schema.json', 'plan.schema.json']);
  });
});
