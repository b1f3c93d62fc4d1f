/**
 * The `subnode` binary as a Unix tool: exit codes, signals, deadlines, --json for results and
 * errors, --version, `run` as one process for a supervisor, and one run per system. Runs the
 * built dist/src/cli/main.js in child processes; every wait is for a condition, with a deadline.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAIN, Running, until } from './helpers/cli-tools.js';

const FIXTURES = resolve('test/fixtures/cli');
const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

let dir: string;
let env: NodeJS.ProcessEnv;
/** Without --no-node-snapshot anywhere: `run` has to relaunch Node with it. */
let bare: NodeJS.ProcessEnv;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A child `subnode`, in the suite's directory and environment unless told otherwise. */
function start(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Running {
  return Running.start(args, { cwd: options.cwd ?? dir, env: options.env ?? env });
}

async function cli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  const r = start(args, options);
  const timer = setTimeout(() => r.child.kill('SIGKILL'), 30_000);
  const code = await r.exited;
  clearTimeout(timer);
  return { code, stdout: r.stdout, stderr: r.stderr };
}

/** A directory with a config of two thread nodes; `a` runs the counter server `hits`. */
function systemDir(name: string): string {
  const at = join(dir, name);
  mkdirSync(at);
  cpSync(join(FIXTURES, 'counter.v1.ts'), join(at, 'counter.v1.ts'));
  writeFileSync(
    join(at, 'system.json'),
    JSON.stringify({
      nodes: [
        { name: 'a', modules: { counter: './counter.v1.ts' }, start: [{ module: 'counter', server: true, args: [1], name: 'hits' }] },
        { name: 'b', modules: { counter: './counter.v1.ts' } },
      ],
    }),
  );
  return at;
}

async function startSystem(at: string, runEnv = env): Promise<{ run: Running; socket: string; pid: number }> {
  const run = start(['run', 'system.json'], { cwd: at, env: runEnv });
  const [, socket, pid] = await run.waitFor(/control socket (\S+) \(pointer: .*\); pid (\d+)/);
  return { run, socket: socket!, pid: Number(pid) };
}

/** A control socket that reads requests and never answers: a hung system. */
async function silentServer(path: string): Promise<{ server: Server; requests: () => number }> {
  let lines = 0;
  const server = createServer((socket) =>
    socket.on('data', (d) => {
      lines += String(d).split('\n').length - 1;
    }),
  );
  await new Promise<void>((done) => server.listen(path, done));
  return { server, requests: () => lines };
}

beforeAll(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build first (npx tsc -p .)`);
  dir = mkdtempSync(join(tmpdir(), 'subnode-unix-'));
  env = { ...process.env, XDG_RUNTIME_DIR: dir, XDG_STATE_HOME: join(dir, 'state'), NODE_OPTIONS: '--no-node-snapshot' };
  delete env.SUBNODE_SOCKET;
  bare = { ...env };
  delete bare.NODE_OPTIONS;
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('subnode as a Unix tool', () => {
  it('--version prints the package version; usage errors exit 2, as JSON with --json', async () => {
    const [text, json, badTimeout, usage, usageJson] = await Promise.all([
      cli(['--version']),
      cli(['--version', '--json']),
      cli(['nodes', '--timeout', 'soon']),
      cli(['frobnicate']),
      cli(['frobnicate', '--json']),
    ]);
    expect(text).toEqual({ code: 0, stdout: `subnode ${VERSION}\n`, stderr: '' });
    expect(JSON.parse(json.stdout)).toEqual({ version: VERSION });
    expect(badTimeout.code).toBe(2);
    expect(badTimeout.stderr).toContain('--timeout takes a number of ms > 0');
    expect(usage.code).toBe(2);
    expect(usageJson.code).toBe(2);
    expect(usageJson.stdout).toBe('');
    expect(JSON.parse(usageJson.stderr)).toMatchObject({ error: { code: 'usage', message: "unknown command 'frobnicate'", exitCode: 2 } });
  });

  it('a wait that passes --timeout: exit 1 and a timeout error (JSON with --json)', async () => {
    const path = join(dir, 'hung.sock');
    const { server, requests } = await silentServer(path);
    try {
      const [text, json] = await Promise.all([
        cli(['nodes', '--socket', path, '--timeout', '300']),
        cli(['info', '--socket', path, '--timeout', '300', '--json']),
      ]);
      expect(requests()).toBe(2);
      expect(text.code).toBe(1);
      expect(text.stderr).toBe(`subnode: no answer to nodes from ${path} within 300 ms (--timeout MS waits longer)\n`);
      expect(json.code).toBe(1);
      expect(json.stdout).toBe('');
      expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: 'timeout', exitCode: 1 } });
    } finally {
      server.close();
    }
  });

  it('SIGINT and SIGTERM end a waiting command at once: exit 130 and 143', async () => {
    const path = join(dir, 'waits.sock');
    const { server, requests } = await silentServer(path);
    try {
      const interrupted = start(['nodes', '--socket', path]);
      const terminated = start(['upgrade', join(FIXTURES, 'upgrade.json'), '--socket', path, '--json']);
      await until('both requests to arrive', () => requests() === 2);
      interrupted.child.kill('SIGINT');
      terminated.child.kill('SIGTERM');
      expect(await interrupted.exited).toBe(130);
      expect(await terminated.exited).toBe(143);
      expect(interrupted.stderr).toBe('subnode: interrupted by SIGINT\n');
      expect(JSON.parse(terminated.stderr)).toEqual({ error: { code: 'interrupted', message: 'interrupted by SIGTERM', exitCode: 143 } });
    } finally {
      server.close();
    }
  });

  it('--json: every command prints JSON and exits by its result, errors as one JSON line on stderr', async () => {
    const at = systemDir('json');
    const { run, socket } = await startSystem(at);
    try {
      const o = { cwd: at };
      const info = await cli(['info', '--json'], o);
      expect(info.code).toBe(0);
      expect(JSON.parse(info.stdout)).toMatchObject({ socket, nodes: 2 });
      const load = await cli(['load', 'b', 'counter', 'counter.v1.ts', '--json'], o);
      expect(load.code, load.stderr).toBe(0);
      expect(JSON.parse(load.stdout)).toMatchObject({ module: 'counter', version: 2, previous: 1 });
      const lingering = await cli(['lingering', 'b', 'counter', '--json'], o);
      expect(lingering).toMatchObject({ code: 0, stdout: '[]\n' });
      const migrate = await cli(['migrate', 'a.1', 'b', '--json'], o);
      expect(migrate.code, migrate.stderr).toBe(0);
      expect(JSON.parse(migrate.stdout)).toMatchObject({ pid: '<a.1>', from: 'a', to: 'b', ok: true });
      const events = await cli(['events', '--json', '--type', 'process_migrated'], o);
      expect(events.code).toBe(0);
      expect(JSON.parse(events.stdout)).toEqual([expect.objectContaining({ event: expect.objectContaining({ type: 'process_migrated', pid: '<a.1>' }) })]);
      for (const r of [info, load, lingering, migrate, events]) expect(r.stderr).toBe('');

      const [unknown, refused] = await Promise.all([cli(['ps', 'zz', '--json'], o), cli(['migrate', 'a.1', 'b', '--json'], o)]);
      expect(unknown).toMatchObject({ code: 1, stdout: '' });
      expect(JSON.parse(unknown.stderr)).toEqual({
        error: { code: 'unknown_node', message: "no node named 'zz' (nodes: a, b)", exitCode: 1, details: { node: 'zz' } },
      });
      expect(refused.code).toBe(1);
      expect(JSON.parse(refused.stderr).error).toMatchObject({ code: 'refused', exitCode: 1 });

      // The server checks every request against the op list: unknown fields are refused, not ignored.
      const raw = connect(socket);
      let answer = '';
      raw.on('data', (d) => {
        answer += d;
      });
      raw.write(`${JSON.stringify({ id: 7, op: 'ps', args: { nod: 'a' } })}\n${JSON.stringify({ id: 8, op: 'frob', args: {} })}\n`);
      await until('two answers', () => answer.split('\n').length > 2);
      raw.destroy();
      const [psAnswer, frobAnswer] = answer
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(psAnswer).toEqual({
        id: 7,
        error: {
          code: 'bad_request',
          message: "ps: unknown field 'nod' (ps takes node)",
          details: { op: 'ps', problems: ["unknown field 'nod' (ps takes node)"] },
        },
      });
      expect(frobAnswer).toMatchObject({ id: 8, error: { code: 'bad_request' } });
    } finally {
      run.child.kill('SIGTERM');
      expect(await run.exited).toBe(0);
    }
  });

  it('run with --no-node-snapshot already given is one process; SIGINT stops it: exit 0, socket and lock gone', async () => {
    const at = systemDir('single');
    const { run, socket, pid } = await startSystem(at);
    expect(pid).toBe(run.child.pid);
    expect(existsSync(join(at, '.subnode.lock'))).toBe(true);
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(0);
    expect(run.stdout).toMatch(/stopping \(SIGINT\)\n.*stopped\n$/);
    for (const file of [socket, `${socket}.lock`, join(at, '.subnode.lock'), join(at, '.subnode.sock')]) expect(existsSync(file), file).toBe(false);
  });

  it("relaunched run: SIGHUP to the launcher is forwarded (a graceful stop), and the launcher exits with the child's code", async () => {
    const at = systemDir('hup');
    const { run, socket, pid } = await startSystem(at, bare);
    expect(pid).not.toBe(run.child.pid);
    run.child.kill('SIGHUP');
    expect(await run.exited).toBe(0);
    expect(run.stdout).toMatch(/stopping \(SIGHUP\)\n.*stopped\n$/);
    await until('the relaunched child to end', () => !alive(pid));
    expect(existsSync(socket)).toBe(false);
  });

  it('relaunched run: when the launcher is killed, the system stops too', async () => {
    const at = systemDir('orphan');
    const { run, socket, pid } = await startSystem(at, bare);
    run.child.kill('SIGKILL');
    await run.exited;
    await until('the orphaned system to stop', () => !alive(pid));
    expect(run.stdout).toMatch(/stopping \(the launcher exited\)/);
    expect(existsSync(socket)).toBe(false);
    expect(existsSync(join(at, '.subnode.lock'))).toBe(false);
  });

  it('a second run of the same system is refused, naming the running one; a stale lock is taken over', async () => {
    const at = systemDir('twice');
    const first = await startSystem(at);
    try {
      const second = await cli(['run', 'system.json'], { cwd: at });
      expect(second.code).toBe(1);
      expect(second.stderr).toContain(`this system is already running: pid ${first.pid}, control socket ${first.socket}`);
      expect(readFileSync(join(at, '.subnode.sock'), 'utf8').trim()).toBe(first.socket); // its pointer untouched
      const json = await cli(['run', 'system.json', '--json'], { cwd: at });
      expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: 'already_running', exitCode: 1 } });
    } finally {
      first.run.child.kill('SIGTERM');
      expect(await first.run.exited).toBe(0);
    }
    // A lock left by a run that was SIGKILLed: its pid is dead.
    const dead = spawn(process.execPath, ['-e', '']);
    const deadPid = dead.pid!;
    await new Promise((done) => dead.on('exit', done));
    writeFileSync(
      join(at, '.subnode.lock'),
      JSON.stringify({ pid: deadPid, socket: join(dir, 'gone.sock'), config: join(at, 'system.json'), startedAt: new Date().toISOString() }),
    );
    const again = await startSystem(at);
    expect(JSON.parse(readFileSync(join(at, '.subnode.lock'), 'utf8'))).toMatchObject({ pid: again.pid, socket: again.socket });
    again.run.child.kill('SIGTERM');
    expect(await again.run.exited).toBe(0);
  });

  it('a bad config exits 2, as JSON with --json', async () => {
    const r = await cli(['run', join(FIXTURES, 'bad.json'), '--json']);
    expect(r.code).toBe(2);
    const { error } = JSON.parse(r.stderr) as { error: { code: string; exitCode: number; problems: string[] } };
    expect(error).toMatchObject({ code: 'bad_config', exitCode: 2 });
    expect(error.problems).toContain(`nodes[0].kind: must be 'thread' or 'isolate', got "process"`);
  });
});
