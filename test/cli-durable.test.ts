/**
 * Durable server state with `subnode` only: a config start entry `{ server: true, name, durable:
 * { checkpoint: 'message' } }`; increments by `subnode call`; the `subnode run` process killed
 * with SIGKILL while calls are in flight; `subnode run` again: every increment that was
 * acknowledged is still there. A bad durable declaration in a config exits 2 naming the field.
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Running, cli } from './helpers/cli-tools.js';

let dir: string;
let env: NodeJS.ProcessEnv;
const running: Running[] = [];

const config = (durable: unknown) => ({
  nodes: [{ name: 'a', modules: { counter: './counter.v1.ts' }, start: [{ module: 'counter', server: true, args: [0], name: 'hits', durable }] }],
});

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'subnode-durable-cli-'));
  cpSync(resolve('test/fixtures/cli/counter.v1.ts'), join(dir, 'counter.v1.ts'));
  writeFileSync(join(dir, 'system.json'), JSON.stringify(config({ checkpoint: 'message' })));
  env = { ...process.env, XDG_RUNTIME_DIR: dir };
  delete env.SUBNODE_SOCKET;
});

afterAll(() => {
  for (const r of running) if (r.code === undefined) r.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function start(file = 'system.json'): Promise<Running> {
  const run = Running.start(['run', file], { cwd: dir, env });
  running.push(run);
  await run.waitFor(/control socket /);
  return run;
}

const sub = (args: string[]) => cli(args, { cwd: dir, env });

describe('kill -9 keeps every acknowledged increment', () => {
  it("checkpoint 'message': calls answered before the SIGKILL are all there after subnode run again", async () => {
    let run = await start();
    const acknowledged: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await sub(['call', 'hits@a', '"inc"']);
      expect(r.code).toBe(0);
      acknowledged.push(Number(r.stdout.trim()));
    }
    expect(acknowledged).toEqual([1, 2, 3, 4]);
    // More calls in flight; the system is killed as soon as the first of them is answered.
    const inFlight = Array.from({ length: 6 }, () => sub(['call', 'hits@a', '"inc"']));
    await Promise.race(inFlight);
    run.child.kill('SIGKILL');
    await run.exited;
    for (const r of await Promise.all(inFlight)) if (r.code === 0) acknowledged.push(Number(r.stdout.trim()));
    const highest = Math.max(...acknowledged);
    expect(highest).toBeGreaterThanOrEqual(5);

    run = await start();
    await run.waitFor(/resumed durable state 'hits'/);
    const count = Number((await sub(['call', 'hits@a', '"get"'])).stdout.trim());
    // Every acknowledged increment is kept; at most the unanswered ones in flight were saved too.
    expect(count).toBeGreaterThanOrEqual(highest);
    expect(count).toBeLessThanOrEqual(10);
    expect(Number((await sub(['call', 'hits@a', '"inc"'])).stdout.trim())).toBe(count + 1);
    expect((await sub(['stop'])).code).toBe(0);
    expect(await run.exited).toBe(0);
  });

  it('a bad durable declaration in the config exits 2, naming the field', async () => {
    writeFileSync(join(dir, 'bad.json'), JSON.stringify(config({ checkpoint: 'sometimes', every: 3 })));
    const bad = await sub(['run', 'bad.json']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/nodes\[0\]\.start\[0\]\.durable\.checkpoint/);
    expect(bad.stderr).toMatch(/nodes\[0\]\.start\[0\]\.durable\.every/);
    const noKey = {
      nodes: [{ name: 'a', modules: { counter: './counter.v1.ts' }, start: [{ module: 'counter', server: true, durable: { checkpoint: 'message' } }] }],
    };
    writeFileSync(join(dir, 'nokey.json'), JSON.stringify(noKey));
    const keyless = await sub(['run', 'nokey.json']);
    expect(keyless.code).toBe(2);
    expect(keyless.stderr).toMatch(/needs a stable key/);
  });
});
