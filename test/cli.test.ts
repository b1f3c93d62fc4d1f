/**
 * The `subnode` command, run as users run it: the built binary (dist/src/cli/main.js) in child
 * processes, against a real `subnode run CONFIG` child with a thread node and an isolate node.
 * `npm test` builds first; alone: `npx tsc -p . && NODE_OPTIONS=--no-node-snapshot npx vitest run test/cli.test.ts`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../src/cli/client.js';
import { ProgressLine } from '../src/cli/commands.js';
import { completeLine, makeCompleter, tokenize } from '../src/cli/complete.js';
import type { Names } from '../src/wire/cli.js';

const MAIN = resolve('dist/src/cli/main.js');
const FIXTURES = resolve('test/fixtures/cli');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

let dir: string;
/** The environment of every child: no inherited socket, history and runtime dir inside `dir`. */
let env: NodeJS.ProcessEnv;

function cli(args: string[], options: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: options.cwd ?? dir, env: options.env ?? env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`subnode ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, 15_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** A long-running child (`run`, `events --follow`) whose output can be waited for. */
class Running {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d) => {
      this.stdout += d;
    });
    child.stderr!.on('data', (d) => {
      this.stderr += d;
    });
    this.exited = new Promise((done) => child.on('close', (code) => done(code)));
  }

  static start(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Running {
    return new Running(spawn(process.execPath, [MAIN, ...args], { cwd: options.cwd ?? dir, env: options.env ?? env, stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  async waitFor(pattern: RegExp, stream: 'stdout' | 'stderr' = 'stdout', timeoutMs = 15_000): Promise<RegExpMatchArray> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const match = this[stream].match(pattern);
      if (match) return match;
      if (this.child.exitCode !== null || Date.now() > until) {
        throw new Error(`no ${pattern} on ${stream}; exit ${this.child.exitCode}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

let system: Running;
let socket: string;
/** The process that serves the socket: the re-executed child of `system`. */
let serverPid: number;

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build first (npx tsc -p .)`);
  dir = mkdtempSync(join(tmpdir(), 'subnode-cli-'));
  cpSync(FIXTURES, dir, { recursive: true });
  // The pinger versions are the examples' own modules.
  for (const v of ['v1', 'v2']) cpSync(resolve(`examples/modules/${v}/pinger.ts`), join(dir, `pinger.${v}.ts`));
  env = { ...process.env, XDG_RUNTIME_DIR: dir, XDG_STATE_HOME: join(dir, 'state') };
  delete env.SUBNODE_SOCKET;
  // Without --no-node-snapshot anywhere, so the binary has to re-exec itself for the isolate node.
  const bare = { ...env };
  delete bare.NODE_OPTIONS;
  system = Running.start(['run', 'system.json'], { env: bare });
  const [, path, pid] = await system.waitFor(/control socket (\S+) \(pointer: .*\); pid (\d+)/);
  socket = path!;
  serverPid = Number(pid);
});

afterAll(async () => {
  for (const pid of [system?.child.pid, serverPid]) {
    if (pid && system?.child.exitCode === null)
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('subnode run and the control socket', () => {
  it('starts both nodes, logs events one per line, and serves a 0600 socket named in .subnode.sock', async () => {
    expect(system.stdout).toMatch(/started 3 nodes from .*system\.json: a \(thread\), b \(isolate\), c \(thread\)/);
    expect(system.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z {2}b +loaded counter v1$/m);
    expect(serverPid).not.toBe(system.child.pid); // re-executed with --no-node-snapshot
    expect(socket.startsWith(dir)).toBe(true);
    expect(statSync(socket).isSocket()).toBe(true);
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, '.subnode.sock'), 'utf8').trim()).toBe(socket);
  });

  it('nodes, ps, modules: tables for people, JSON for scripts', async () => {
    const [nodes, nodesJson, ps, psJson, modules, modulesJson] = await Promise.all([
      cli(['nodes']),
      cli(['nodes', '--json']),
      cli(['ps', 'a']),
      cli(['--json', 'ps']),
      cli(['modules']),
      cli(['modules', 'b', '--json']),
    ]);
    for (const r of [nodes, nodesJson, ps, psJson, modules, modulesJson]) expect(r.stderr).toBe('');
    expect(nodes.stdout).toMatch(
      /^NODE +KIND +STATUS +CREATION +PROCESSES +MODULES\na +thread +running +0 +2 +2\nb +isolate +running +0 +1 +1\nc +thread +running +0 +0 +1\n$/,
    );
    expect(JSON.parse(nodesJson.stdout)).toEqual([
      { name: 'a', kind: 'thread', status: 'running', creation: 0, processes: 2, modules: 2 },
      { name: 'b', kind: 'isolate', status: 'running', creation: 0, processes: 1, modules: 1 },
      { name: 'c', kind: 'thread', status: 'running', creation: 0, processes: 0, modules: 1 },
    ]);
    expect(ps.stdout).toMatch(/^PID +NAME +STATUS +MAILBOX +VERSIONS +INITIAL\n/);
    expect(ps.stdout).toMatch(/^<a\.1> +pinger +waiting +0 +pinger v1 +pinger\.start$/m);
    expect(ps.stdout).toMatch(/^<a\.2> +hits +waiting +0 +counter vsn 1 \(server callbacks\) +server:counter$/m);
    const all = JSON.parse(psJson.stdout) as { node: string; pid: string; name?: string; mailbox: number; versions: unknown[] }[];
    expect(all.map((p) => [p.node, p.pid, p.name])).toEqual([
      ['a', '<a.1>', 'pinger'],
      ['a', '<a.2>', 'hits'],
      ['b', '<b.1>', 'hits'],
    ]);
    expect(all[0]!.versions).toEqual([{ module: 'pinger', version: 1, state: 'current' }]);
    expect(modules.stdout).toMatch(/^NODE +MODULE +VERSION +STATE +PROCESSES +POLICY\n/);
    expect(modules.stdout).toMatch(/^a +pinger +v1 +current +1 +erlang\/soft$/m);
    // The 'hits' servers run counter's current version: counted there.
    expect(modules.stdout).toMatch(/^a +counter +v1 +current +1 +erlang\/soft$/m);
    expect(modules.stdout).toMatch(/^b +counter +v1 +current +1 +stack\(3\)\/soft$/m);
    expect(modules.stdout).toMatch(/^c +counter +v1 +current +0 +forever\/soft$/m);
    const mods = JSON.parse(modulesJson.stdout) as { node: string; name: string; versions: { version: number; state: string }[] }[];
    expect(mods.map((m) => [m.node, m.name, m.versions.map((v) => v.state)])).toEqual([['b', 'counter', ['current']]]);
  });

  it('send and call, to a pid or NAME@NODE, on the thread node and the isolate node', async () => {
    expect(await cli(['call', 'hits@a', '"inc"'])).toMatchObject({ code: 0, stdout: '11\n' });
    expect(await cli(['send', '<a.2>', '{"add":5}'])).toMatchObject({ code: 0, stdout: 'sent to <a.2>\n' });
    expect(await cli(['call', 'a.2', '"get"'])).toMatchObject({ code: 0, stdout: '16\n' });
    const sent = await cli(['send', 'hits@b', '{"add":2}', '--json']);
    expect(JSON.parse(sent.stdout)).toEqual({ sent: '<b.1>' });
    const got = await cli(['call', '<b.1>', '"inc"', '--json']);
    expect(JSON.parse(got.stdout)).toBe(3);
  });

  it('load a new version, lingering, soft-purge refused, then purge; events --follow sees it', async () => {
    const loaded = await cli(['load', 'a', 'pinger', 'pinger.v2.ts']);
    expect(loaded.code).toBe(0);
    expect(loaded.stdout).toBe('loaded pinger v2 on a (v1 is now old)\n');
    expect(loaded.stderr).toMatch(/^warning: pinger\.v2\.ts:\d+ loop: .*only continues by local calls/m); // hazards, as warnings
    await system.waitFor(/ a +loaded pinger v2$/m);
    expect(await cli(['lingering', 'a', 'pinger'])).toMatchObject({ code: 0, stdout: '<a.1>\n' });
    expect(JSON.parse((await cli(['lingering', 'a', 'pinger', '--json'])).stdout)).toEqual(['<a.1>']);

    const soft = await cli(['soft-purge', 'a', 'pinger']);
    expect(soft.code).toBe(1);
    expect(soft.stdout).toBe('');
    expect(soft.stderr).toContain('soft-purge refused: 1 process still runs old code of pinger on a: <a.1>');
    expect(soft.stderr).toContain('subnode purge a pinger');
    const softJson = await cli(['soft-purge', 'a', 'pinger', '--json']);
    expect(softJson.code).toBe(1);
    expect(JSON.parse(softJson.stdout)).toMatchObject({ module: 'pinger', ok: false, lingering: ['<a.1>'] });

    const follow = Running.start(['events', '--follow']);
    const followJson = Running.start(['events', '--follow', '--json', '--type', 'process_purged']);
    await follow.waitFor(/following events from /, 'stderr');
    await followJson.waitFor(/^\{"following":".*"\}$/m, 'stderr'); // with --json, stderr carries JSON lines only
    const purged = await cli(['purge', 'a', 'pinger']);
    expect(purged).toMatchObject({ code: 0, stdout: 'purged pinger v1 on a; killed <a.1>\n' });
    await follow.waitFor(/^\S+Z {2}a +<a\.1> killed by the purge of pinger v1$/m);
    await follow.waitFor(/^\S+Z {2}a +purged pinger v1$/m);
    const [line] = await followJson.waitFor(/^\{.*\}$/m);
    expect(JSON.parse(line)).toMatchObject({ event: { type: 'process_purged', node: 'a', pid: '<a.1>', module: 'pinger', version: 1 } });
    follow.child.kill('SIGINT');
    followJson.child.kill('SIGTERM');
    expect(await follow.exited).toBe(130);
    expect(await followJson.exited).toBe(143);
    expect(JSON.parse(followJson.stderr.trim().split('\n').at(-1)!)).toMatchObject({
      error: { code: 'interrupted', message: 'interrupted by SIGTERM', exitCode: 143 },
    });
    expect(await cli(['lingering', 'a', 'pinger'])).toMatchObject({ code: 0, stdout: '(no process runs old code of pinger on a)\n' });
    const recent = await cli(['events', '--node', 'a', '--type', 'module_loaded']);
    expect(recent.stdout).toMatch(/ a +loaded pinger v2\n/);
  });

  it('upgrade PLAN: canary first, progress lines on stderr, states converted on both nodes', async () => {
    const up = await cli(['upgrade', 'upgrade.json']);
    expect(up.code).toBe(0);
    expect(up.stderr.split('\n').filter(Boolean)).toEqual([
      'upgrade: b upgrading (0/2)',
      'upgrade: b upgraded (1/2)',
      'upgrade: a upgrading (1/2)',
      'upgrade: a upgraded (2/2)',
    ]);
    expect(up.stdout).toMatch(/^NODE +STATUS +LOADED +CONVERTED +LINGERING +KILLED\nb +upgraded +counter v2 +1 +0 +0\na +upgraded +counter v2 +1 +0 +0\n$/);
    const info = JSON.parse((await cli(['call', 'hits@b', '"info"'])).stdout);
    expect(info).toEqual({ count: 3, note: 'upgraded by subnode upgrade', vsn: 2 });
    expect(JSON.parse((await cli(['call', 'hits@a', '"info"', '--json'])).stdout)).toEqual({ count: 16, note: 'upgraded by subnode upgrade', vsn: 2 });
    // Again: the plan is now a no-op conversion, and --json gives the whole report.
    const again = await cli(['upgrade', 'upgrade.json', '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({
      ok: true,
      nodes: [
        { node: 'b', status: 'upgraded' },
        { node: 'a', status: 'upgraded' },
      ],
    });
  });

  it('a plan that fails: exit 1 and the reason; a plan file that is wrong: exit 2 and the field', async () => {
    writeFileSync(join(dir, 'broken.ts'), 'export const vsn = 3;\nthrow new Error("top level fails");\n');
    writeFileSync(join(dir, 'fail.json'), JSON.stringify({ modules: [{ module: 'counter', source: { path: './broken.ts' } }], nodes: ['b', 'a'] }));
    const failed = await cli(['upgrade', 'fail.json']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/upgrade rolled back on b at step \d+ \(load\): .*top level fails/);
    expect(failed.stderr).toContain("not attempted on a: the plan stopped after node 'b' failed");
    expect(JSON.parse((await cli(['call', 'hits@b', '"vsn"'])).stdout)).toBe(2); // rolled back: still v2
    writeFileSync(join(dir, 'missing.json'), JSON.stringify({ modules: [{ module: 'counter', source: { path: './nope.ts' } }] }));
    const missing = await cli(['upgrade', 'missing.json']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('modules[0].source: cannot read ./nope.ts (ENOENT)');
  });

  it('unknown node, module or pid: exit 1 with a clear message; a malformed pid is bad input: exit 2', async () => {
    const [node, module, pid, deadNode, badPid, purgeUnknown] = await Promise.all([
      cli(['ps', 'zz']),
      cli(['lingering', 'a', 'nosuch']),
      cli(['send', '<a.99>', '{}']),
      cli(['call', '<zz.1>', '"get"']),
      cli(['send', 'nonsense', '{}']),
      cli(['purge', 'b', 'pinger']),
    ]);
    expect(node).toMatchObject({ code: 1, stdout: '', stderr: "subnode: no node named 'zz' (nodes: a, b, c)\n" });
    expect(module.code).toBe(1);
    expect(module.stderr).toBe("subnode: no module named 'nosuch' on node 'a' (modules on 'a': pinger, counter)\n");
    expect(pid.code).toBe(1);
    expect(pid.stderr).toContain("no process <a.99> on node 'a'");
    expect(deadNode.code).toBe(1);
    expect(deadNode.stderr).toContain("pid <zz.1>: no node named 'zz' (nodes: a, b, c)");
    expect(badPid.code).toBe(2);
    expect(badPid.stderr).toContain('"nonsense" is not a pid');
    expect(purgeUnknown.code).toBe(1);
    expect(purgeUnknown.stderr).toContain("no module named 'pinger' on node 'b' (modules on 'b': counter)");
  });

  it('usage errors exit 2 with a usage line; --help and help CMD', async () => {
    const [unknown, missing, badJson, badFlag, help, helpLoad, none] = await Promise.all([
      cli(['frobnicate']),
      cli(['load', 'a']),
      cli(['send', 'a.2', '{oops']),
      cli(['ps', '--all']),
      cli(['--help']),
      cli(['help', 'load']),
      cli([]),
    ]);
    expect(unknown).toMatchObject({ code: 2, stdout: '' });
    expect(unknown.stderr).toContain("subnode: unknown command 'frobnicate'");
    expect(unknown.stderr).toContain('usage: subnode COMMAND');
    expect(missing).toMatchObject({ code: 2, stderr: 'subnode: load: missing MODULE\nusage: subnode load NODE MODULE FILE [--purge kill|soft]\n' });
    expect(badJson.code).toBe(2);
    expect(badJson.stderr).toContain('the message is not valid JSON');
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain('unknown option --all for ps');
    expect(help.code).toBe(0);
    for (const name of [
      'run CONFIG',
      'attach',
      'nodes',
      'ps [NODE]',
      'modules [NODE]',
      'load NODE MODULE FILE',
      'purge NODE MODULE',
      'soft-purge NODE MODULE',
      'lingering NODE MODULE',
      'upgrade PLAN',
      'migrate PID NODE',
      'send DEST JSON',
      'call DEST JSON',
      'events [--follow]',
    ]) {
      expect(help.stdout).toContain(`  ${name}`);
    }
    expect(helpLoad).toMatchObject({ code: 0 });
    expect(helpLoad.stdout).toMatch(/^usage: subnode load NODE MODULE FILE \[--purge kill\|soft\]\n/);
    expect(none.code).toBe(2);
  });

  it('an unreachable or missing socket: exit 1, saying how to fix it', async () => {
    const gone = await cli(['nodes', '--socket', join(dir, 'gone.sock')]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain(`cannot reach the control socket ${join(dir, 'gone.sock')} (from --socket): it does not exist`);
    expect(gone.stderr).toContain('subnode run CONFIG');
    const nowhere = await cli(['ps'], { cwd: tmpdir() });
    expect(nowhere.code).toBe(1);
    expect(nowhere.stderr).toContain('no running system found');
    expect(nowhere.stderr).toContain('SUBNODE_SOCKET');
    const viaEnv = await cli(['nodes', '--json'], { cwd: tmpdir(), env: { ...env, SUBNODE_SOCKET: socket } });
    expect(viaEnv.code).toBe(0);
    expect(JSON.parse(viaEnv.stdout)).toHaveLength(3);
  });

  it('attach: a shell over piped stdin, with history kept in a file', async () => {
    const input =
      ['nodes', 'ps b --json', 'bogus', 'call hits@a "\\"get\\""', 'send a.2 \'{"add": 4}\'', 'call hits@a \'"get"\'', 'history', 'exit', 'nodes'].join('\n') +
      '\n';
    const shell = await cli(['attach'], { input });
    expect(shell.code).toBe(0);
    expect(shell.stdout).toMatch(/^NODE +KIND +STATUS/);
    const psStart = shell.stdout.indexOf('[');
    const psEnd = shell.stdout.indexOf('\n]\n') + 2;
    expect((JSON.parse(shell.stdout.slice(psStart, psEnd)) as { pid: string }[]).map((p) => p.pid)).toEqual(['<b.1>']);
    expect(shell.stdout).toContain('\n16\n');
    expect(shell.stdout).toContain('sent to <a.2>\n20\n');
    expect(shell.stdout).toMatch(/ {3}3 {2}bogus\n/);
    expect(shell.stdout.match(/^NODE +KIND/gm)).toHaveLength(1); // nothing runs after exit
    expect(shell.stderr).toContain("subnode: unknown command 'bogus'");
    const history = readFileSync(join(dir, 'state', 'subnode', 'history'), 'utf8');
    expect(history.split('\n')).toEqual(expect.arrayContaining(['nodes', 'ps b --json', 'call hits@a \'"get"\'', 'exit']));
    expect(statSync(join(dir, 'state', 'subnode', 'history')).mode & 0o777).toBe(0o600);
  });

  it("completion: commands, nodes, the node's modules, pids, flags; fetched from the running system", async () => {
    const names: Names = { nodes: ['a', 'b', 'beta'], modules: { a: ['pinger', 'counter'], b: ['counter', 'cache'] }, pids: ['<a.1>', '<a.2>', '<b.1>'] };
    expect(completeLine('', names)[0]).toEqual(expect.arrayContaining(['nodes', 'ps', 'load', 'upgrade', 'exit']));
    expect(completeLine('', names)[0]).not.toContain('run');
    expect(completeLine('so', names)).toEqual([['soft-purge'], 'so']);
    expect(completeLine('ps ', names)).toEqual([['a', 'b', 'beta'], '']);
    expect(completeLine('ps b', names)).toEqual([['b', 'beta'], 'b']);
    expect(completeLine('load b c', names)).toEqual([['cache', 'counter'], 'c']);
    expect(completeLine('purge a ', names)).toEqual([['counter', 'pinger'], '']);
    expect(completeLine('send <a', names)).toEqual([['<a.1>', '<a.2>'], '<a']);
    expect(completeLine('migrate <b.1> ', names)).toEqual([['a', 'b', 'beta'], '']);
    expect(completeLine('events --f', names)).toEqual([['--follow'], '--f']);
    expect(completeLine('events --node ', names)).toEqual([['a', 'b', 'beta'], '']);
    expect(completeLine('help up', names)).toEqual([['upgrade'], 'up']);
    expect(completeLine('load a pinger ', names, (prefix) => ['pinger.v2.ts', 'x/'].filter((f) => f.startsWith(prefix)))).toEqual([['pinger.v2.ts', 'x/'], '']);
    expect(completeLine('nodes ', names)).toEqual([[], '']);
    expect(tokenize(`send "<a.1>" '{"a": 1}' x\\ y`)).toEqual({ words: ['send', '<a.1>', '{"a": 1}', 'x y'], open: true });

    // The completer the shell uses, against the live system.
    const client = await Client.connect({ path: socket, via: '--socket' });
    try {
      const complete = makeCompleter(() => client.request('names', {}));
      const ask = (line: string) => new Promise<[string[], string]>((done) => complete(line, (_e, result) => done(result)));
      expect(await ask('ps ')).toEqual([['a', 'b', 'c'], '']);
      expect(await ask('purge a p')).toEqual([['pinger'], 'p']);
      expect((await ask('call <'))[0]).toEqual(['<a.2>', '<b.1>']);
      expect(await ask('load b ')).toEqual([['counter'], '']);
    } finally {
      client.close();
    }
  });

  it('progress: one updating line on a terminal', () => {
    let text = '';
    const line = new ProgressLine(
      {
        tty: true,
        write: (t) => {
          text += t;
        },
      },
      'upgrade',
    );
    line.update({ node: 'a', phase: 'start', done: 0, total: 2 });
    line.update({ node: 'a', phase: 'upgraded', done: 1, total: 2 });
    line.update({ node: 'b', phase: 'rolled_back', done: 2, total: 2 });
    line.end();
    expect(text).toBe(
      '\r\x1b[2Kupgrade [--------------------] 0/2 a: upgrading' +
        '\r\x1b[2Kupgrade [##########----------] 1/2 a: upgraded' +
        '\r\x1b[2Kupgrade [####################] 2/2 b: rolled back\n',
    );
  });

  it('a bad config: exit 2, every problem named by its field', async () => {
    // No pointer: this directory's pointer (and its lock) belong to the running system.
    writeFileSync(
      join(dir, 'nofn.json'),
      JSON.stringify({
        nodes: [{ name: 'x', modules: { counter: './counter.v1.ts' }, start: [{ module: 'counter', fn: 'nosuch' }] }],
        control: { pointer: false },
      }),
    );
    const [bad, nofn, absent] = await Promise.all([
      cli(['run', 'bad.json']),
      cli(['run', 'nofn.json', '--socket', join(dir, 'nofn.sock')]),
      cli(['run', 'absent.json']),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toContain(`bad config ${join(dir, 'bad.json')}:`);
    for (const problem of [
      `nodes[0].kind: must be 'thread' or 'isolate', got "process"`,
      'nodes[0].modules.counter: cannot read ./missing.ts (ENOENT)',
      "nodes[1].modles: unknown field (did you mean 'modules'?)",
      'nodes[1].code.stack: must be an integer >= 1',
      "nodes[1].start[0].module: 'nosuch' is not one of nodes[1].modules",
      "nodes[2].policy: must be one of 'sandboxed', 'trusted', 'legacy-pinned'",
      "nodes[2].name: 'a' is already the name of nodes[0]",
    ])
      expect(bad.stderr).toContain(problem);
    expect(nofn.code).toBe(2);
    expect(nofn.stderr).toContain("nodes[0] (x): module 'counter' exports no function 'nosuch'");
    expect(existsSync(join(dir, 'nofn.sock'))).toBe(false);
    expect(absent.code).toBe(2);
    expect(absent.stderr).toContain('cannot read the config file (ENOENT)');
  });

  it('refuses a socket path that is not a socket, or that a live system holds (naming it)', async () => {
    writeFileSync(join(dir, 'plain-file'), 'keep me');
    // system.ts writes no pointer, so only the socket decides.
    const [file, taken] = await Promise.all([cli(['run', 'system.ts', '--socket', join(dir, 'plain-file')]), cli(['run', 'system.ts', '--socket', socket])]);
    expect(file.code).toBe(1);
    expect(file.stderr).toContain('exists and is not a socket; refusing to replace it');
    expect(readFileSync(join(dir, 'plain-file'), 'utf8')).toBe('keep me');
    expect(existsSync(join(dir, 'plain-file.lock'))).toBe(false); // released on the way out
    expect(taken.code).toBe(1);
    expect(taken.stderr).toContain(`this system is already running: pid ${serverPid}, control socket ${socket}`);
  });

  it('a TypeScript config, --socket, and `subnode stop`', async () => {
    const path = join(dir, 'ts.sock');
    const ts = Running.start(['run', 'system.ts', '--socket', path]);
    await ts.waitFor(/control socket \S+ts\.sock; pid \d+/);
    expect(existsSync(join(dir, '.subnode.sock'))).toBe(true); // the first system's pointer, untouched (pointer: false)
    const called = await cli(['call', 'hits@a', '"inc"', '--socket', path]);
    expect(called).toMatchObject({ code: 0, stdout: '2\n' });
    const nodes = JSON.parse((await cli(['nodes', '--json', '--socket', path])).stdout) as { name: string; kind: string }[];
    expect(nodes.map((n) => `${n.name}:${n.kind}`)).toEqual(['a:thread', 'b:isolate']);
    const stop = await cli(['stop', '--socket', path]);
    expect(stop.code).toBe(0);
    expect(await ts.exited).toBe(0);
    expect(ts.stdout).toMatch(/stopping \(stop command\)\n.*stopped\n$/);
    expect(existsSync(path)).toBe(false);
  });

  it('migrate PID NODE: the process moves and keeps its pid; migrate-all moves them back with progress', async () => {
    const moved = await cli(['migrate', 'a.2', 'c', '--extra', '{"note":"moved"}']);
    expect(moved, moved.stderr).toMatchObject({ code: 0, stdout: 'migrated <a.2> from a to c (move 1)\n', stderr: '' });
    await system.waitFor(/ c +<a\.2> migrated here from a \(move 1\)$/m);
    const onC = JSON.parse((await cli(['ps', 'c', '--json'])).stdout) as { pid: string; migration?: { cameFrom: string } }[];
    expect(onC.find((p) => p.pid === '<a.2>')?.migration).toEqual({ moves: 1, cameFrom: 'a' });
    const called = await cli(['call', '<a.2>', '"inc"']);
    expect(called, called.stderr).toMatchObject({ code: 0, stdout: '21\n' }); // its pid still reaches it
    const [again, dead, nowhere, usage] = await Promise.all([
      cli(['migrate', '<a.2>', 'c']),
      cli(['migrate', '<a.99>', 'c']),
      cli(['migrate', 'a.2', 'zz']),
      cli(['migrate', 'a.2']),
    ]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("<a.2> already runs on node 'c'");
    expect(dead.code).toBe(1);
    expect(dead.stderr).toContain("no process <a.99> on node 'a'");
    expect(nowhere).toMatchObject({ code: 1, stderr: "subnode: no node named 'zz' (nodes: a, b, c)\n" });
    expect(usage.code).toBe(2);
    const raw = (await cli(['spawn', 'a', 'pinger', 'start'])).stdout.trim();
    const refused = await cli(['migrate', raw, 'c']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${raw} cannot migrate: it is not a server or statem`);

    const back = await cli(['migrate-all', 'c', 'a', '--module', 'counter', '--batch', '1']);
    expect(back, back.stderr).toMatchObject({ code: 0, stdout: 'migrated 1 of 1 process from c to a\n' });
    expect(back.stderr).toBe('migrate: a migrated (1/1)\n');
    const onA = JSON.parse((await cli(['ps', 'a', '--json'])).stdout) as { pid: string }[];
    expect(onA.map((p) => p.pid)).toContain('<a.2>');
    const after = await cli(['call', 'hits@a', '"get"']);
    expect(after, after.stderr).toMatchObject({ code: 0, stdout: '21\n' });
  });

  it('a node that crashes is restarted, and its config servers with it', async () => {
    expect((await cli(['load', 'a', 'crasher', 'crasher.ts'])).code).toBe(0);
    await cli(['spawn', 'a', 'crasher', 'start']);
    await system.waitFor(/ a +node DOWN \(creation 0\): exit code 3$/m);
    await system.waitFor(/ a +node restarted \(creation 1\)$/m);
    const ps = JSON.parse((await cli(['ps', 'a', '--json'])).stdout) as { pid: string; name?: string }[];
    expect(ps.map((p) => [p.pid, p.name])).toEqual(
      expect.arrayContaining([
        ['<a.1.1>', 'pinger'],
        ['<a.2.1>', 'hits'],
      ]),
    );
    expect(JSON.parse((await cli(['call', 'hits@a', '"info"'])).stdout)).toEqual({ count: 10, note: null, vsn: 2 }); // the current version, fresh
    expect(JSON.parse((await cli(['nodes', '--json'])).stdout)[0]).toMatchObject({ name: 'a', status: 'running', creation: 1 });
  });

  it('SIGTERM stops it cleanly: exit 0, socket and pointer removed', async () => {
    system.child.kill('SIGTERM');
    expect(await system.exited).toBe(0);
    expect(system.stdout).toMatch(/stopping \(SIGTERM\)\n.*stopped\n$/);
    expect(existsSync(socket)).toBe(false);
    expect(existsSync(join(dir, '.subnode.sock'))).toBe(false);
    expect(() => process.kill(serverPid, 0)).toThrow(); // the re-executed child is gone too
  });
});
