/**
 * The live views of a `subnode run` child, through its control socket, as users run them:
 * `subnode observe` (its URL, token and views over the socket), and
 * `subnode top` in a real pseudo-terminal: tmux runs the built binary against a `subnode run`
 * child; the test reads the screen (`tmux capture-pane -p`) and presses keys (`send-keys`).
 * `npm test` builds first; alone: `npx tsc -p . && NODE_OPTIONS=--no-node-snapshot npx vitest run test/top.test.ts`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pid } from '../src/kernel/pid.js';
import { renderTop } from '../src/observe/top.js';
import { until as waitUntil } from './helpers/wait.js';

const MAIN = resolve('dist/src/cli/main.js');
const TMUX = `subnode-top-${process.pid}`;
let dir: string;
let run: ChildProcess;
let runOut = '';
let socket: string;

const tmux = (...args: string[]) => execFileSync('tmux', ['-L', TMUX, ...args], { encoding: 'utf8' });

/** `until`, with what `subnode run` printed so far in the error. */
const until = <T>(what: string, check: () => T | undefined | false, ms = 15_000): Promise<T> =>
  waitUntil(what, check, ms).catch((error: Error) => {
    throw new Error(`${error.message}\n${runOut}`);
  });

/** Starts `subnode top` in a fresh tmux session; its exit code lands in a file. */
function startTop(name: string): { screen: () => string; exit: () => string | undefined } {
  const exitFile = join(dir, `${name}.exit`);
  const command = `'${process.execPath}' '${MAIN}' top --socket '${socket}' --interval 200; echo "EXIT=$?" > '${exitFile}'`;
  tmux('new-session', '-d', '-s', name, '-x', '120', '-y', '40', command);
  return {
    screen: () => {
      try {
        return tmux('capture-pane', '-p', '-t', name);
      } catch {
        return '';
      }
    },
    exit: () => (existsSync(exitFile) ? readFileSync(exitFile, 'utf8').trim() : undefined),
  };
}

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build first (npx tsc -p .)`);
  try {
    execFileSync('tmux', ['-V']);
  } catch {
    throw new Error('tmux is missing: `subnode top` is tested in a tmux pseudo-terminal (apt-get install tmux)');
  }
  dir = mkdtempSync(join(tmpdir(), 'subnode-top-'));
  cpSync(resolve('examples/modules/v1/pinger.ts'), join(dir, 'pinger.v1.ts'));
  writeFileSync(
    join(dir, 'system.json'),
    JSON.stringify({
      nodes: [{ name: 'alpha', modules: { pinger: './pinger.v1.ts' }, start: [{ module: 'pinger', fn: 'start', name: 'critical' }] }, { name: 'beta' }],
    }),
  );
  socket = join(dir, 'control.sock');
  run = spawn(process.execPath, ['--no-node-snapshot', MAIN, 'run', 'system.json', '--socket', socket], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  run.stdout!.on('data', (d) => {
    runOut += d;
  });
  run.stderr!.on('data', (d) => {
    runOut += d;
  });
  await until('the control socket', () => runOut.includes('control socket'), 20_000);
});

afterAll(async () => {
  try {
    tmux('kill-server');
  } catch {
    /* no sessions left */
  }
  if (run && run.exitCode === null) {
    run.kill('SIGTERM');
    await new Promise((done) => run.once('close', done));
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('subnode observe', () => {
  it('serves the dashboard of the running system over its control socket, behind the token', async () => {
    const child = spawn(process.execPath, [MAIN, 'observe', '--json', '--metrics', '--socket', socket], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
    });
    try {
      const { url, port, token } = JSON.parse(await until('the URL', () => out.split('\n').find((l) => l.startsWith('{')))) as {
        url: string;
        port: number;
        token: string;
      };
      expect(url).toBe(`http://127.0.0.1:${port}/?token=${token}`);
      const base = `http://127.0.0.1:${port}`;
      expect((await fetch(`${base}/api/nodes`)).status).toBe(403);
      const headers = { 'x-subnode-token': token };
      const nodes = (await (await fetch(`${base}/api/nodes`, { headers })).json()) as { name: string; processes: number }[];
      expect(nodes.map((n) => [n.name, n.processes])).toEqual([
        ['alpha', expect.any(Number)],
        ['beta', 0],
      ]);
      const page = (await (await fetch(`${base}/api/processes?filter=critical`, { headers })).json()) as { rows: { pid: string; node: string }[] };
      expect(page.rows).toEqual([expect.objectContaining({ pid: '<alpha.1>', node: 'alpha' })]);
      const detail = (await (await fetch(`${base}/api/process?pid=${encodeURIComponent('<alpha.1>')}`, { headers })).json()) as { node: string };
      expect(detail.node).toBe('alpha');
      const restart = await fetch(`${base}/api/action`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ action: 'restart', node: 'beta' }),
      });
      expect(await restart.json()).toEqual({ id: 1, result: { node: 'beta', creation: 1 } });
      expect(await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text()).toContain(
        'subnode_node_restarts{node="beta"} 1',
      );
    } finally {
      child.kill('SIGINT');
      expect(await new Promise((done) => child.once('close', done))).toBe(130);
    }
  });
});

describe('subnode top', () => {
  it('draws nodes, top processes and recent events in place, re-sorts on a key, and exits 0 on q', async () => {
    const top = startTop('q');
    const screen = await until('the first frame', () => {
      const s = top.screen();
      return s.includes('recent events') && s.includes('<alpha.1>') ? s : undefined;
    });
    expect(screen).toMatch(/^subnode top — .*control\.sock/);
    expect(screen).toMatch(/alpha\s+thread\s+running\s+0\s+1\b/);
    expect(screen).toMatch(/beta\s+thread\s+running/);
    expect(screen).toMatch(/<alpha\.1>\s+alpha\s+critical\s+waiting\s+0/);
    expect(screen).toContain('loaded pinger v1');
    expect(screen).toContain('sort: mailbox');

    // In place: a process spawned now shows up in the same screen, not below it.
    execFileSync(process.execPath, [MAIN, 'spawn', 'alpha', 'pinger', 'start', '--socket', socket], { env: process.env, stdio: 'ignore' });
    await until('a new process on the screen', () => top.screen().includes('<alpha.2>'));
    tmux('send-keys', '-t', 'q', 'r');
    await until('the sort changed', () => top.screen().includes('sort: reductions'));
    expect(
      top
        .screen()
        .split('\n')
        .filter((l) => l.startsWith('subnode top')).length,
    ).toBe(1);

    tmux('send-keys', '-t', 'q', 'q');
    expect(await until('exit', () => top.exit())).toBe('EXIT=0');
  });

  it('exits 130 on Ctrl-C', async () => {
    const top = startTop('ctrlc');
    await until('the first frame', () => top.screen().includes('recent events'));
    tmux('send-keys', '-t', 'ctrlc', 'C-c');
    expect(await until('exit', () => top.exit())).toBe('EXIT=130');
  });

  it('fits the screen it is given', () => {
    const rows = Array.from({ length: 500 }, (_, i) => ({
      pid: `<a.${i + 1}>` as Pid,
      node: 'a',
      status: 'waiting' as const,
      mailbox: 500 - i,
      initial: 'm.f',
      versions: [],
      links: [],
      monitors: [],
      monitoredBy: [],
      trapExit: false,
    }));
    const lines = renderTop({ nodes: [], top: { total: 500, matched: 500, offset: 0, rows, at: 0 }, events: [] }, 'sock', 'mailbox', 80, 24);
    expect(lines.length).toBeLessThanOrEqual(24);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(80);
  });
});
