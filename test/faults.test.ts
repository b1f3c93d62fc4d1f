/**
 * The fault-injection suite (issue #12): a hang and a crash injected into every control operation
 * of the op table and into every step of an upgrade plan (the testing-only `faults` field of a
 * node spec, applied by the node's runtime). Whatever breaks, the host's call fails with a typed
 * error within a bounded time, the node is reported and restarted per policy (on the release it
 * had), and another node keeps answering meanwhile.
 */
import { describe, expect, it } from 'vitest';
import { waitEvent } from './helpers/events.js';
import { NodeDown, System, Timeout, type SystemEvent } from '../src/index.js';
import { controlOps, type ControlOp } from '../src/kernel/control-ops.js';
import type { UpgradeStep } from '../src/kernel/upgrade.js';
import type { NodeKind } from '../src/host/node-backend.js';
import { counterV1, counterV2 } from './fixtures/counter.js';

/** Every operation of the one table: a new operation is covered without editing this file. */
const OPS = Object.keys(controlOps(undefined as never)) as ControlOp[];
/** Every step an upgrade plan can have (checked against the step type). */
const STEPS = ['suspend', 'load', 'codeChange', 'resume', 'purge'] as const satisfies readonly UpgradeStep['op'][];
type Fault = 'hang' | 'crash';

/** Small, so a hang is noticed quickly; the bound every failed call must meet. */
const UNRESPONSIVE_MS = 300;
const BOUND_MS = UNRESPONSIVE_MS + 5_000;

const typed = (e: unknown): boolean => e instanceof NodeDown || e instanceof Timeout;

/**
 * One operation, one fault, one system: the faulty node `f` and a witness `w`. The fault fires
 * before the operation reads its arguments, so the call carries none.
 */
async function injectIntoOp(op: ControlOp, fault: Fault, kind: NodeKind): Promise<void> {
  const system = await System.start({
    nodes: [{ name: 'f', kind, unresponsiveMs: UNRESPONSIVE_MS, faults: { [fault]: [op] } }, { name: 'w' }],
  });
  try {
    const events: SystemEvent[] = [];
    system.on('*', (e) => events.push(e));
    const down = waitEvent(system, 'node_down', (e) => e.node === 'f');
    const restarted = waitEvent(system, 'node_restarted', (e) => e.node === 'f');
    const f = system.node('f');
    const t0 = Date.now();
    let settled = false;
    const call = (f.callNow as (op: ControlOp) => Promise<unknown>)(op)
      .then(
        () => 'answered',
        (e: unknown) => e,
      )
      .finally(() => (settled = true));
    // The witness answers while the faulty node hangs (or is dying).
    expect(await system.node('w').callNow('ping')).toBe('pong');
    if (fault === 'hang') expect(settled, `${op}: the hung call settled before the witness answered`).toBe(false);
    const error = await call;
    const ms = Date.now() - t0;
    expect(typed(error), `${op} ${fault}: ${String(error)}`).toBe(true);
    expect(ms, `${op} ${fault} took ${ms} ms`).toBeLessThan(BOUND_MS);
    expect(await down).toMatchObject({ node: 'f', creation: 0 });
    if (fault === 'hang')
      expect(
        events.find((e) => e.type === 'node_unresponsive' && e.node === 'f'),
        `${op}: no node_unresponsive`,
      ).toBeDefined();
    await restarted;
    expect(f.summary()).toMatchObject({ status: 'running', creation: 1 });
    // The new incarnation has no faults: it answers, and so does the witness, never restarted.
    expect(await f.processes()).toEqual([]);
    expect(await system.node('w').processes()).toEqual([]);
    expect(system.node('w').summary()).toMatchObject({ status: 'running', creation: 0 });
  } finally {
    await system.stop();
  }
}

/** One plan step, one fault: node `a` runs three counters on v1; the plan brings v2. */
async function injectIntoStep(step: UpgradeStep['op'], fault: Fault): Promise<void> {
  const system = await System.start({
    nodes: [
      { name: 'a', unresponsiveMs: UNRESPONSIVE_MS, modules: { counter: counterV1 }, faults: { [fault === 'hang' ? 'hangStep' : 'crashStep']: [step] } },
      { name: 'w', modules: { counter: counterV1 } },
    ],
  });
  try {
    const events: SystemEvent[] = [];
    system.on('*', (e) => events.push(e));
    const a = system.node('a');
    for (let i = 0; i < 3; i++) await a.startServer('counter', [i]);
    const witness = await system.node('w').startServer('counter', [100]);
    const restarted = waitEvent(system, 'node_restarted', (e) => e.node === 'a');
    const t0 = Date.now();
    const upgrading = system.upgrade({ nodes: ['a'], modules: [{ module: 'counter', source: { code: counterV2 }, extra: { seed: [] } }] });
    expect(await system.call(witness, 'inc')).toBe(101);
    const report = await upgrading;
    const ms = Date.now() - t0;
    expect(ms, `${step} ${fault} took ${ms} ms`).toBeLessThan(BOUND_MS);
    expect(report.ok).toBe(false);
    const outcome = report.nodes[0]!;
    expect(outcome, `${step} ${fault}`).toMatchObject({ node: 'a', status: 'failed', error: { code: 'node_down' } });
    expect(
      events.some((e) => e.type === 'upgrade_step' && e.node === 'a' && e.op === step) ||
        (step === 'purge' && events.some((e) => e.type === 'module_purged' && e.node === 'a')),
      `${step}: the plan never reached the step`,
    ).toBe(true);
    if (fault === 'hang') expect(events.find((e) => e.type === 'node_unresponsive' && e.node === 'a')).toBeDefined();
    await restarted;
    expect(a.summary()).toMatchObject({ status: 'running', creation: 1 });
    // Back on its previous release: v1 current, nothing of v2.
    const counter = (await a.modules()).find((m) => m.name === 'counter')!;
    expect(counter.versions.map((v) => [v.version, v.state])).toEqual([[1, 'current']]);
    const pid = await a.startServer('counter', [5]);
    expect(await system.call(pid, 'vsn')).toBe(1);
    expect(await system.call(witness, 'vsn')).toBe(1);
    expect(system.node('w').summary()).toMatchObject({ status: 'running', creation: 0 });
  } finally {
    await system.stop();
  }
}

describe('a hang and a crash in every control operation (thread nodes)', () => {
  it('the op table is covered', () => {
    expect(OPS.length).toBeGreaterThan(20);
    expect(OPS).toContain('applyUpgrade');
  });
  for (const op of OPS) {
    it.concurrent(`${op}: fails typed and bounded, the node restarts, the witness answers`, async () => {
      await Promise.all((['hang', 'crash'] as const).map((fault) => injectIntoOp(op, fault, 'thread')));
    });
  }
});

describe('isolate nodes, a representative few', () => {
  for (const op of ['ping', 'load', 'getState', 'applyUpgrade'] as const satisfies readonly ControlOp[]) {
    it.concurrent(`${op}: fails typed and bounded, the node restarts, the witness answers`, async () => {
      await Promise.all((['hang', 'crash'] as const).map((fault) => injectIntoOp(op, fault, 'isolate')));
    });
  }
});

describe('a hang and a crash in every upgrade plan step', () => {
  for (const step of STEPS) {
    it.concurrent(`${step}: the plan fails in bounded time, the node comes back on its previous release`, async () => {
      await Promise.all((['hang', 'crash'] as const).map((fault) => injectIntoStep(step, fault)));
    });
  }
});

describe('a codeChange that loops or throws (a module fault, no hook)', () => {
  const looping = counterV2.replace(
    'export function codeChange(oldVsn: unknown, state: any, extra: any) {',
    'export function codeChange(oldVsn: unknown, state: any, extra: any) { if (extra?.loop) for (;;) {}',
  );
  it.concurrent('loops: the plan fails in bounded time, the node restarts on v1', async () => {
    const system = await System.start({ nodes: [{ name: 'a', unresponsiveMs: UNRESPONSIVE_MS, modules: { counter: counterV1 } }, { name: 'w' }] });
    try {
      const a = system.node('a');
      await a.startServer('counter', [1]);
      const restarted = waitEvent(system, 'node_restarted', (e) => e.node === 'a');
      const t0 = Date.now();
      const report = await system.upgrade({ nodes: ['a'], modules: [{ module: 'counter', source: { code: looping }, extra: { loop: true } }] });
      expect(Date.now() - t0).toBeLessThan(BOUND_MS);
      expect(report.nodes[0]).toMatchObject({ status: 'failed', error: { code: 'node_down' } });
      await restarted;
      expect((await a.modules())[0]!.versions.map((v) => v.version)).toEqual([1]);
      expect(await system.node('w').callNow('ping')).toBe('pong');
    } finally {
      await system.stop();
    }
  });
  it.concurrent('throws: the node rolls back in bounded time and keeps running on v1', async () => {
    const system = await System.start({ nodes: [{ name: 'a', unresponsiveMs: UNRESPONSIVE_MS, modules: { counter: counterV1 } }] });
    try {
      const a = system.node('a');
      const pid = await a.startServer('counter', [1]);
      const t0 = Date.now();
      const report = await system.upgrade({ nodes: ['a'], modules: [{ module: 'counter', source: { code: counterV2 }, extra: { fail: true } }] });
      expect(Date.now() - t0).toBeLessThan(BOUND_MS);
      expect(report.nodes[0]).toMatchObject({ status: 'rolled_back', error: { op: 'codeChange' } });
      expect(await system.call(pid, 'vsn')).toBe(1);
      expect(a.summary()).toMatchObject({ status: 'running', creation: 0 });
    } finally {
      await system.stop();
    }
  });
});
