import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

// The examples run as users run them: the built file, in a fresh Node process.
async function example(name: string): Promise<string> {
  const { stdout } = await run(process.execPath, ['--no-node-snapshot', `dist/examples/${name}.js`], { timeout: 20_000 });
  return stdout;
}

describe('examples', () => {
  it('two-nodes: one module, two versions alive in two nodes', async () => {
    const out = await example('two-nodes');
    expect(out).toContain('edge   → Hi Grace, nice to see you for the first time! (greeter v2, greeting #3)');
    expect(out).toContain('legacy → Hello, Grace. (greeter v1, greeting #2)');
    expect(out).toMatch(/legacy: greeter v1 current \(1 running\); process <legacy\.1> runs v1\n.*\n\nTwo versions/);
    expect(out).toContain('edge  : greeter v1 old (0 running), v2 current (1 running); process <edge.1> runs v2');
  });

  it('upgrade-counter: v1 → v2 with state conversion, a call during the upgrade is answered', async () => {
    const out = await example('upgrade-counter');
    expect(out).toContain('v1 state of hits: 3');
    expect(out).toContain('upgrade: upgraded, 2 processes converted');
    expect(out).toContain('the call made during the upgrade got 4');
    expect(out).toMatch(/v2 state of hits: \{"count":4,"changedAt":"/);
    expect(out).toContain('v2: info = {"count":100,"changedAt":"converted from v1","vsn":"2.0.0"}');
  });

  it('hotfix-3am: the critical process dies under erlang, lives on under stack', async () => {
    const out = await example('hotfix-3am');
    expect(out).toContain('beam: 03:02 loaded v3 (purged versions: [1], killed: [<beam.1>])');
    expect(out).toContain('beam: the critical process is dead ("killed")');
    expect(out).toContain('calm: the critical process answers from v1; lingering in old pinger code: [<calm.1>]');
    expect(out).toContain('calm: pinger versions v1:old(1) v3:current(0)');
  });

  it('find-leak: lingering() finds exactly the untold processes', async () => {
    const out = await example('find-leak');
    expect(out).toContain("lingering('worker') → 3 processes: <pool.20001>, <pool.20002>, <pool.20003>");
    expect(out).toContain('found exactly');
    expect(out).toContain('softPurge refuses while they linger: ok=false, lingering=3');
    expect(out).toContain('after telling them too: softPurge ok=true, purged versions [1]');
  });

  it('classes: a base module and its subclasses upgraded together by one plan', async () => {
    const out = await example('classes');
    expect(out).toContain('plan: loaded animal v2, cat v2, dog v2; 4 processes converted together');
    expect(out).toContain('after:  Tom says meow (sleepy)');
    expect(out).toContain('after:  Laika says woof (excited)');
  });

  it('migrate: a session moves legacy v1 → edge v2 under its pid while a client sends; then a bulk move', async () => {
    const out = await example('migrate');
    expect(out).toContain('v1 state: {"user":"alice","hits":5,"last":{"host":4},"outOfOrder":0}');
    expect(out).toContain('[event] <legacy.1> migrated legacy → edge (move 1)');
    expect(out).toMatch(/migrate\(<legacy\.1>, 'edge'\): ok=true, state converted 1\.0\.0 → 2\.0\.0 by edge's codeChange/);
    expect(out).toContain('locate(<legacy.1>): runs on edge, home legacy, 1 move, path legacy → edge');
    expect(out).toContain('client: sent 3000 hits; the session counted 3000 from it (last seq 2999), 0 out of order, 0 lost');
    expect(out).toContain(
      'v2 state: {"user":"alice","stats":{"hits":3005,"last":{"host":4,"client":2999},"outOfOrder":0},"convertedFrom":"1.0.0","note":"legacy is being retired"}',
    );
    expect(out).toContain('by name on its home node: {"user":"alice","hits":3005,"outOfOrder":0,"vsn":"2.0.0"}');
    expect(out).toContain('  bulk: 1000/1000 moved');
    expect(out).toMatch(/bulk: 1000 moved, 0 failed/);
    expect(out).toContain('sessions now: legacy 0, edge 1001');
  });
});
