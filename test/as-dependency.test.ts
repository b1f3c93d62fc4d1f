/**
 * subnode as an app gets it: the packed tarball installed into a fresh app from the local npm cache
 * (offline, without optional packages: no isolated-vm, no compiler), a two-node script that loads a
 * module by `{ path, base: import.meta.url }` and upgrades it, module code and a config type-checked
 * against the installed types, and the `subnode` command through npx. Every step fails loudly with
 * its output. Needs `npm run build` first (npm test does it).
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> };
const work = mkdtempSync(join(tmpdir(), 'subnode-as-dependency-'));
const app = join(work, 'app');
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The environment of a child: this run's npm settings (npm test's npm_*) left out, offline. */
function env(): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('npm_') || k === 'npm_config_cache' || k === 'npm_config_userconfig') clean[k] = v;
  return { ...clean, npm_config_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a step; resolves with its output, or rejects naming the step if it outlives `ms`. */
function run(step: string, command: string, args: string[], cwd: string, ms = 60_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${step}: still running after ${ms} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, ms);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${step}: cannot run ${command}: ${error.message}`));
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A step that must exit 0. */
async function must(step: string, command: string, args: string[], cwd: string, ms?: number): Promise<Ran> {
  const r = await run(step, command, args, cwd, ms);
  if (r.code !== 0) throw new Error(`${step}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/**
 * Fallback when the cache cannot serve the dependencies offline: the tarball unpacked as npm would,
 * its runtime dependencies linked from this project's node_modules (said loudly in the output).
 */
async function installByHand(tarball: string): Promise<void> {
  const into = join(app, 'node_modules', 'subnode');
  mkdirSync(into, { recursive: true });
  await must('unpack the tarball', 'tar', ['xzf', tarball, '-C', into, '--strip-components=1'], app);
  const linked = new Set<string>();
  const link = (name: string): void => {
    if (linked.has(name)) return;
    linked.add(name);
    const from = join(ROOT, 'node_modules', name);
    const to = join(app, 'node_modules', name);
    mkdirSync(dirname(to), { recursive: true });
    symlinkSync(from, to, 'dir');
    const deps = (JSON.parse(readFileSync(join(from, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {};
    for (const dep of Object.keys(deps)) link(dep);
  };
  for (const dep of Object.keys(pkg.dependencies)) link(dep);
  mkdirSync(join(app, 'node_modules', '.bin'), { recursive: true });
  const bin = join(into, 'dist/src/cli/main.js');
  chmodSync(bin, 0o755);
  symlinkSync(bin, join(app, 'node_modules', '.bin', 'subnode'));
}

const COUNTER_V1 = `// counter server, version 1: the state is a number.
export const vsn = 1;
export function init(start) { return start; }
export function handleCall(request, _from, count) {
  if (request === 'inc') return { reply: count + 1, state: count + 1 };
  return { reply: { count, vsn }, state: count };
}
export function handleCast(_message, count) { return { noreply: count }; }
`;

const COUNTER_V2 = `// counter server, version 2: the state is { count, note }.
export const vsn = 2;
export function init(start) { return { count: start, note: null }; }
export function handleCall(request, _from, state) {
  if (request === 'inc') return { reply: state.count + 1, state: { ...state, count: state.count + 1 } };
  return { reply: { ...state, vsn }, state };
}
export function handleCast(_message, state) { return { noreply: state }; }
export function codeChange(_oldVsn, count, extra) { return { count, note: extra.note }; }
`;

const MAIN = `import { System, Unavailable } from 'subnode';

// Module files next to this script, whatever the current directory.
const counter = (version) => ({ path: \`./modules/\${version}/counter.js\`, base: import.meta.url });

const system = await System.start({
  nodes: [{ name: 'a', modules: { counter: counter('v1') } }, { name: 'b', modules: { counter: counter('v1') } }],
});
try {
  const pa = await system.node('a').startServer('counter', [10]);
  const pb = await system.node('b').startServer('counter', [20]);
  await system.call(pa, 'inc');
  const report = await system.upgrade({ nodes: ['a'], modules: [{ module: 'counter', source: counter('v2'), extra: { note: 'upgraded' } }] });
  let isolate = 'started';
  try {
    await system.addNode({ name: 'sandbox', kind: 'isolate' });
  } catch (error) {
    isolate = error instanceof Unavailable ? error.details.missing : \`\${error.name}: \${error.message}\`;
  }
  console.log(JSON.stringify({ ok: report.ok, a: await system.call(pa, 'get'), b: await system.call(pb, 'get'), isolate }));
} finally {
  await system.stop();
}
`;

// Module code and a config as an app writes them in TypeScript: checked against the installed types.
const CHECK = `import { receive, on, send, type Pid } from 'subnode/process';
import type { RunConfig, UpgradePlan } from 'subnode';
import { sandboxed } from 'subnode/policies';

export function loop(n: number): unknown {
  return receive(on({ type: 'get' }, (m: { from: Pid }) => { send(m.from, n); return loop(n); }));
}
export const config: RunConfig = { nodes: [{ name: 'a', modules: { counter: './modules/v1/counter.js' } }] };
export const plan: UpgradePlan = { modules: [{ module: 'counter', source: { path: './modules/v2/counter.js', base: import.meta.url } }] };
export const plugins = { name: 'plugins', kind: 'isolate' as const, ...sandboxed };
`;

describe('subnode as a dependency', () => {
  it('packs, installs offline without optional packages, runs two nodes and an upgrade, type-checks, and npx subnode answers', async () => {
    expect(existsSync(join(ROOT, 'dist/src/index.js')), 'dist/ is missing: npm run build').toBe(true);
    const packed = await must('npm pack', 'npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT);
    const [{ filename, files }] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
    const tarball = join(work, filename);
    // Only what an app needs.
    const tops = [...new Set(files.map((f) => (f.path.startsWith('dist/') ? f.path.split('/').slice(0, 2).join('/') : f.path.split('/')[0])))].sort();
    expect(tops).toEqual(['CHANGELOG.md', 'LICENSE', 'README.md', 'dist/policies', 'dist/src', 'package.json', 'schema']);
    expect(files.some((f) => f.path.endsWith('.map'))).toBe(false);

    mkdirSync(join(app, 'modules/v1'), { recursive: true });
    mkdirSync(join(app, 'modules/v2'), { recursive: true });
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }, null, 2));
    writeFileSync(join(app, 'modules/v1/counter.js'), COUNTER_V1);
    writeFileSync(join(app, 'modules/v2/counter.js'), COUNTER_V2);
    writeFileSync(join(app, 'main.js'), MAIN);
    writeFileSync(join(app, 'check.ts'), CHECK);

    const installed = await run('npm install (offline)', 'npm', ['install', '--offline', '--omit=optional', '--no-audit', '--no-fund', tarball], app, 90_000);
    if (installed.code !== 0) {
      if (!/ENOTCACHED|only-if-cached/.test(installed.stderr)) throw new Error(`npm install: exit ${installed.code}\n${installed.stderr}`);
      console.warn(
        `as-dependency: the npm cache cannot serve subnode's dependencies offline; linking them from ${ROOT}node_modules instead\n${installed.stderr}`,
      );
      await installByHand(tarball);
    }
    expect(existsSync(join(app, 'node_modules/isolated-vm')), 'isolated-vm is optional: --omit=optional leaves it out').toBe(false);

    // No --no-node-snapshot needed for thread nodes; the isolate node says what it lacks.
    const ran = await must('node main.js', process.execPath, ['main.js'], app);
    expect(JSON.parse(ran.stdout)).toEqual({
      ok: true,
      a: { count: 11, note: 'upgraded', vsn: 2 },
      b: { count: 20, vsn: 1 },
      isolate: 'isolated-vm',
    });

    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    await must(
      'tsc check.ts',
      process.execPath,
      [
        tsc,
        '--noEmit',
        '--strict',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2022',
        '--skipLibCheck',
        '--typeRoots',
        join(ROOT, 'node_modules/@types'),
        '--types',
        'node',
        'check.ts',
      ],
      app,
    );

    const [help, version] = await Promise.all([
      must('npx subnode --help', 'npx', ['--offline', 'subnode', '--help'], app),
      must('npx subnode --version', 'npx', ['--offline', 'subnode', '--version'], app),
    ]);
    expect(help.stdout).toMatch(/^usage: subnode COMMAND/);
    expect(help.stdout).toContain('upgrade');
    expect(version.stdout.trim()).toBe(`subnode ${pkg.version}`);
  }, 120_000);
});
