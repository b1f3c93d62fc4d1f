/**
 * A cluster from the command line: two `subnode run CONFIG --cluster URL --host NAME` processes
 * on one NATS server form one system; `subnode nodes` on either lists both hosts' nodes, and a
 * call from one host's CLI reaches a server on the other host.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Running, cli } from './helpers/cli-tools.js';
import { NatsServer } from './helpers/nats-server.js';

let dir: string;
let nats: NatsServer;
let env: NodeJS.ProcessEnv;
const running: Running[] = [];

beforeAll(async () => {
  nats = await NatsServer.start();
  dir = mkdtempSync(join(tmpdir(), 'subnode-cli-cluster-'));
  env = { ...process.env, XDG_RUNTIME_DIR: dir };
  delete env.SUBNODE_SOCKET;
  for (const [host, node] of [
    ['A', 'web'],
    ['B', 'db'],
  ] as const) {
    mkdirSync(join(dir, host));
    cpSync(resolve('test/fixtures/cli/counter.v1.ts'), join(dir, host, 'counter.ts'));
    writeFileSync(
      join(dir, host, 'system.json'),
      JSON.stringify({ nodes: [{ name: node, modules: { counter: './counter.ts' }, start: [{ module: 'counter', server: true, args: [5], name: 'hits' }] }] }),
    );
  }
}, 30_000);

afterAll(async () => {
  for (const r of running) if (r.code === undefined) r.child.kill('SIGKILL');
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('subnode run --cluster', () => {
  it('two hosts form one system: nodes lists both with their host; a call crosses hosts; stop leaves cleanly', async () => {
    for (const host of ['A', 'B']) {
      const run = Running.start(['run', 'system.json', '--cluster', nats.url, '--host', host], { cwd: join(dir, host), env });
      running.push(run);
      await run.waitFor(/control socket /);
    }
    const nodes = await cli(['nodes', '--json'], { cwd: join(dir, 'A'), env });
    expect(nodes.code).toBe(0);
    const rows = JSON.parse(nodes.stdout) as { name: string; host?: string }[];
    expect(rows.map((r) => [r.name, r.host]).sort()).toEqual([
      ['db', 'B'],
      ['web', 'A'],
    ]);
    // From A: every host's processes (with their host), one node of B's, and the cluster's hosts.
    const ps = await cli(['ps', '--json'], { cwd: join(dir, 'A'), env });
    expect(ps.code).toBe(0);
    const procs = JSON.parse(ps.stdout) as { node: string; host?: string; name?: string }[];
    expect(
      procs
        .filter((p) => p.name === 'hits')
        .map((p) => [p.host, p.node])
        .sort(),
    ).toEqual([
      ['A', 'web'],
      ['B', 'db'],
    ]);
    const psB = await cli(['ps', 'db'], { cwd: join(dir, 'A'), env });
    expect(psB.stdout).toMatch(/^HOST\s+PID/m);
    expect(psB.stdout).toMatch(/^B\s+<db\.[\d.]+>\s+hits/m);
    const info = JSON.parse((await cli(['info', '--json'], { cwd: join(dir, 'B'), env })).stdout) as { nodes: number; cluster?: unknown };
    expect(info).toMatchObject({ nodes: 2, cluster: { host: 'B', hosts: ['A', 'B'] } });
    expect((await cli(['nodes'], { cwd: join(dir, 'B'), env })).stdout).toMatch(/^A\s+web\s+thread\s+running/m);
    const call = await cli(['call', 'hits@db', '"inc"'], { cwd: join(dir, 'A'), env });
    expect(call).toMatchObject({ code: 0 });
    expect(call.stdout.trim()).toBe('6');
    const bad = await cli(['run', 'system.json', '--cluster'], { cwd: join(dir, 'A'), env });
    expect(bad.code).toBe(2);
    for (const host of ['A', 'B']) expect((await cli(['stop'], { cwd: join(dir, host), env })).code).toBe(0);
    for (const run of running) expect(await run.exited).toBe(0);
  }, 120_000);
});
