/**
 * `subnode run` stops in order on SIGTERM: each node's trees from the top, servers' `terminate`
 * callbacks run (newest child first), then the socket goes and the process exits 0.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';

const MAIN = resolve('dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'subnode-shutdown-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('SIGTERM: trees stopped from the top, terminate callbacks run, exit 0', async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build first`);
  writeFileSync(
    join(dir, 'sup.ts'),
    `export function init() {
    return { strategy: 'one_for_one', children: [
      { id: 'first', start: { server: 'worker', args: ['first'] } },
      { id: 'second', start: { server: 'worker', args: ['second'] } },
    ] };
  }`,
  );
  writeFileSync(
    join(dir, 'worker.ts'),
    `import { trapExit } from 'subnode';
    export function init(id: string) { trapExit(true); return id; }
    // A thread node has Node's globals: the file survives the worker's end, where its stdout may not.
    const fs = (globalThis as any).process.getBuiltinModule('node:fs');
    export function terminate(reason: unknown, id: string) { fs.appendFileSync(${JSON.stringify(join(dir, 'terminated.log'))}, 'terminate ' + id + ' ' + String(reason) + '\\n'); }`,
  );
  writeFileSync(
    join(dir, 'app.json'),
    JSON.stringify({ nodes: [{ name: 'a', modules: { sup: './sup.ts', worker: './worker.ts' }, start: [{ supervisor: 'sup', name: 'top' }] }] }),
  );
  const socket = join(dir, 's.sock');
  const env = { ...process.env, NODE_OPTIONS: '--no-node-snapshot', XDG_RUNTIME_DIR: dir, SUBNODE_SOCKET: '' };
  const child = spawn(process.execPath, [MAIN, 'run', 'app.json', '--socket', socket], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((done) => child.on('close', (code) => done(code)));
  const until = Date.now() + 15_000;
  while (!/control socket/.test(stdout)) {
    if (Date.now() > until || child.exitCode !== null) throw new Error(`no start\n${stdout}\n${stderr}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill('SIGTERM');
  expect(await exited).toBe(0);
  expect(stdout).toMatch(/stopping \(SIGTERM\)/);
  expect(readFileSync(join(dir, 'terminated.log'), 'utf8')).toBe('terminate second shutdown\nterminate first shutdown\n');
  expect(existsSync(socket)).toBe(false);
});
