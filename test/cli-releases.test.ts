/**
 * The 3 a.m. hotfix with `subnode` only, then a restart: `subnode load` into a running system,
 * `subnode stop`, `subnode run` again with the same config — the fix is still there (the config
 * still names the old code). `subnode releases` lists the history; `subnode rollback` goes back.
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Running, cli } from './helpers/cli-tools.js';

let dir: string;
let env: NodeJS.ProcessEnv;
const running: Running[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'subnode-releases-cli-'));
  cpSync(resolve('test/fixtures/cli/counter.v1.ts'), join(dir, 'counter.v1.ts'));
  cpSync(resolve('test/fixtures/cli/counter.v2.ts'), join(dir, 'counter.v2.ts'));
  writeFileSync(
    join(dir, 'system.json'),
    JSON.stringify({ nodes: [{ name: 'a', modules: { counter: './counter.v1.ts' }, start: [{ module: 'counter', server: true, args: [10], name: 'hits' }] }] }),
  );
  env = { ...process.env, XDG_RUNTIME_DIR: dir };
  delete env.SUBNODE_SOCKET;
});

afterAll(() => {
  for (const r of running) if (r.code === undefined) r.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function start(): Promise<Running> {
  const run = Running.start(['run', 'system.json'], { cwd: dir, env });
  running.push(run);
  await run.waitFor(/control socket /);
  return run;
}

const sub = (args: string[]) => cli(args, { cwd: dir, env });

describe('the 3 a.m. hotfix survives a restart', () => {
  it("load, stop, run again: the fix runs; releases lists it; rollback goes back to the config's code", async () => {
    let run = await start();
    expect((await sub(['call', 'hits@a', '"vsn"'])).stdout.trim()).toBe('1');
    const load = await sub(['load', 'a', 'counter', 'counter.v2.ts']);
    expect(load.code).toBe(0);
    const stop = await sub(['stop']);
    expect(stop.code).toBe(0);
    expect(await run.exited).toBe(0);

    run = await start();
    const modules = await sub(['modules', 'a', '--json']);
    const counter = (JSON.parse(modules.stdout) as { name: string; versions: { version: number; state: string }[] }[]).find((m) => m.name === 'counter')!;
    expect(counter.versions.map((v) => [v.version, v.state])).toEqual([
      [1, 'old'],
      [2, 'current'],
    ]);
    // The start process came back too, on the fixed code.
    expect((await sub(['call', 'hits@a', '"vsn"'])).stdout.trim()).toBe('2');

    const releases = await sub(['releases', '--json']);
    expect(releases.code).toBe(0);
    const list = JSON.parse(releases.stdout) as { release: number; status: string; label?: string }[];
    expect(list.length).toBeGreaterThanOrEqual(2);
    expect(list[0]).toMatchObject({ status: 'permanent', label: 'start of node a' });
    const table = await sub(['releases']);
    expect(table.stdout).toMatch(/^RELEASE +AT +STATUS +KIND +LABEL$/m);

    const back = await sub(['rollback', String(list[0]!.release)]);
    expect(back).toMatchObject({ code: 0 });
    expect(back.stdout).toMatch(/^a: upgraded$/m);
    expect((await sub(['call', 'hits@a', '"vsn"'])).stdout.trim()).toBe('1');

    const bad = await sub(['rollback', 'zero']);
    expect(bad.code).toBe(2);
    const missing = await sub(['rollback', '999']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/there is no release 999/);

    expect((await sub(['stop'])).code).toBe(0);
    expect(await run.exited).toBe(0);
  }, 120_000);
});
