/**
 * `subnode run` on a JS/TS config whose evaluation never returns: it fails with a ConfigError
 * (exit 2) naming the file and the deadline instead of hanging. Runs the built binary.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAIN = resolve('dist/src/cli/main.js');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'subnode-cfg-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(config: string, deadlineMs: number): Promise<{ code: number | null; stderr: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, ['--no-node-snapshot', MAIN, 'run', config], {
    cwd: dir,
    env: { ...process.env, SUBNODE_CONFIG_DEADLINE_MS: String(deadlineMs) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((done) =>
    child.on('close', (code) => {
      clearTimeout(kill);
      done({ code, stderr, ms: Date.now() - started });
    }),
  );
}

describe('config evaluation deadline', () => {
  it('a config whose top level loops fails with exit 2, naming the file and the deadline', async () => {
    writeFileSync(join(dir, 'loop.js'), 'for (;;) {}\nexport default { nodes: [] };\n');
    const r = await run('loop.js', 500);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('loop.js');
    expect(r.stderr).toMatch(/did not finish within its 500 ms deadline/);
    expect(r.ms).toBeLessThan(15_000);
  }, 30_000);

  it('a default function that never resolves is cut off the same way', async () => {
    writeFileSync(join(dir, 'wait.ts'), 'export default async () => { await new Promise(() => setInterval(() => {}, 1000)); };\n');
    const r = await run('wait.ts', 500);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('wait.ts');
    expect(r.stderr).toMatch(/500 ms deadline/);
  }, 30_000);

  it('a config that returns still comes back and is checked as before', async () => {
    writeFileSync(join(dir, 'bad.js'), 'export default () => ({ nodes: [{ name: "a", kindd: "thread" }] });\n');
    const r = await run('bad.js', 5_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/kindd/);
    expect(r.stderr).not.toMatch(/ms deadline/);
  }, 30_000);
});
