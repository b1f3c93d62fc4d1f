/**
 * The vsn of code that declares none (issue #12, item 11): as OTP's default vsn (the module's MD5)
 * is the same for the same code, loading code a node had before gives it the vsn it had then. So
 * after a downgrade the state is tagged with the vsn of the code it went back to, and the next
 * upgrade runs its conversion from that vsn — on thread and isolate nodes, after a node restart,
 * and after a restart of the whole system on its release store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { System, type Pid } from '../src/index.js';

let system: System | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await system?.stop();
  system = undefined;
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

// Neither version exports a vsn. v2 converts v1's { count } only when told it comes from v1's vsn.
const v1 = `
  export function init(start: number) { return { count: start }; }
  export function handleCall(req: string, _from: unknown, state: any) {
    if (req === 'get') return { reply: state.count, state };
    if (req === 'inc') return { reply: state.count + 1, state: { count: state.count + 1 } };
    return { reply: 'unknown', state };
  }
  export function codeChange(oldVsn: any, state: any) {
    if (oldVsn && typeof oldVsn === 'object' && oldVsn.down === 2) return { count: state.total };
    return state;
  }
`;
const v2 = `
  export function init(start: number) { return { total: start, from: null }; }
  export function handleCall(req: string, _from: unknown, state: any) {
    if (req === 'get') return { reply: state.total, state };
    if (req === 'inc') return { reply: state.total + 1, state: { ...state, total: state.total + 1 } };
    return { reply: 'unknown', state };
  }
  export function codeChange(oldVsn: any, state: any) {
    if (oldVsn === 1) return { total: state.count, from: oldVsn };
    return state;
  }
`;

async function versions(s: System, node: string): Promise<[number, unknown, string][]> {
  const info = (await s.node(node).modules()).find((m) => m.name === 'counter')!;
  return info.versions.map((v) => [v.version, v.vsn, v.state]);
}

async function stateVsn(s: System, node: string, pid: Pid): Promise<unknown> {
  return (await s.node(node).processInfo(pid))?.behaviour?.vsn;
}

describe.each(['thread', 'isolate'] as const)('a downgrade on a %s node tags the state with the vsn of the code it went back to', (kind) => {
  it('v1 → v2 → rollback to v1 → v2 again: the second upgrade converts from vsn 1 again; a node restart keeps the vsns', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'subnode-rollback-vsn-'));
    dirs.push(dir);
    system = await System.start({ nodes: [{ name: 'a', kind, modules: { counter: v1 } }], releases: { store: dir } });
    const first = (await system.releases.list()).at(-1)!.release;
    const pid = await system.node('a').startServer('counter', [7]);
    expect(await stateVsn(system, 'a', pid)).toBe(1);

    await system.upgrade({ modules: [{ module: 'counter', source: { code: v2 } }] });
    expect(await system.node('a').getState(pid)).toEqual({ total: 7, from: 1 });
    expect(await system.call(pid, 'inc')).toBe(8);

    // The rollback loads v1's code again (as version 3) and converts with { down: 2 }.
    expect(await system.rollback(first)).toMatchObject({ ok: true, nodes: [{ node: 'a', status: 'upgraded', loaded: [{ version: 3, vsn: 1 }] }] });
    expect(await system.node('a').getState(pid)).toEqual({ count: 8 });
    expect(await stateVsn(system, 'a', pid)).toBe(1);

    // v2's code again (version 4, vsn 2): its codeChange is told the state comes from vsn 1.
    const again = await system.upgrade({ modules: [{ module: 'counter', source: { code: v2 } }] });
    expect(again.ok).toBe(true);
    expect(await system.node('a').getState(pid)).toEqual({ total: 8, from: 1 });
    expect(await stateVsn(system, 'a', pid)).toBe(2);
    expect(await system.call(pid, 'inc')).toBe(9);
    // Version 3, idle now, was collected: its code is remembered by its hash.
    expect(await versions(system, 'a')).toEqual([[4, 2, 'current']]);

    // A restart of the node replays each version under its number and its vsn; v1's code still has vsn 1.
    await system.node('a').restart();
    expect(await versions(system, 'a')).toEqual([[4, 2, 'current']]);
    expect(await system.node('a').load('counter', v1)).toMatchObject({ version: 5, vsn: 1 });
  });
});

describe('the vsn of code loaded before survives a restart of the system on its release store', () => {
  it('v1 code loaded after a full restart gets vsn 1 although every version with it was purged; the next upgrade converts from it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'subnode-rollback-vsn-'));
    dirs.push(dir);
    const nodes = [{ name: 'a', modules: { counter: v1 } }];
    system = await System.start({ nodes, releases: { store: dir } });
    await system.node('a').load('counter', v2);
    await system.node('a').load('counter', v1);
    await system.node('a').load('counter', v2);
    await system.node('a').purge('counter');
    // Only version 4 (v2's code) is left: the store remembers the vsn of each code by its hash.
    expect(await versions(system, 'a')).toEqual([[4, 2, 'current']]);
    await system.stop();

    system = await System.start({ nodes, releases: { store: dir } });
    expect(await versions(system, 'a')).toEqual([[4, 2, 'current']]);
    const pid = await system.node('a').startServer('counter', [5]);
    // A downgrade written as a plan (not a rollback): v1's code with codeChange { down: 2 }.
    await system.upgrade({ modules: [{ module: 'counter', source: { code: v1 }, oldVsn: { down: 2 } }] });
    await system.upgrade({ modules: [{ module: 'counter', source: { code: v2 } }] });
    expect(await system.node('a').getState(pid)).toEqual({ total: 5, from: 1 });
    expect(await versions(system, 'a')).toEqual([[6, 2, 'current']]);
    // A load of new code still gets its own number as its vsn.
    const report = await system.node('a').load('counter', v2.replace("'unknown'", "'unknown!'"));
    expect(report).toMatchObject({ version: 7, vsn: 7 });
  });
});
