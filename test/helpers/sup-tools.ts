/**
 * Tools for the supervisor suites, ported from OTP's supervisor_SUITE: the callback module whose
 * `init(result)` returns its argument (the suite's `init(InitResult) -> InitResult`), children like
 * supervisor_1 (a server that dies on 'die', stops on 'stop', fails its restarts when started with
 * 'error') and a raw worker that ignores `shutdown`, and the suite's `terminate(Sup, Pid, Id, How)`.
 */
import { expect } from 'vitest';
import type { Pid } from '../../src/kernel/pid.js';
import type { SupRequest } from '../../src/kernel/supervisor-state.js';
import { localKernel, type LocalKernel } from './local-kernel.js';
import { HOST, forward, info, spawnFn, tell, waitDead, waitFor, waitWaiting } from './kernel-tools.js';

/** supervisor_SUITE's callback module: init returns what it is given ('fail' throws). */
export const SUP = `
  export function init(result: any) {
    if (result === 'fail') throw new Error('badmatch');
    return result;
  }
`;

/** supervisor_1: a server child. Started with 'error', only its first start succeeds. */
export const CHILD = `
  import { send } from 'subnode';
  let errorStarts = 0;
  export function init(mode?: string, report?: string) {
    if (mode === 'error' && ++errorStarts > 1) throw new Error('start_child_error');
    if (report) send(report, { started: mode ?? null });
    return { mode };
  }
  export function handleInfo(m: any, s: any) {
    if (m === 'die') return { stop: 'died', state: s };
    if (m === 'stop') return { stop: 'normal', state: s };
    return { noreply: s };
  }
  export function handleCall(r: any, _f: any, s: any) { return { reply: r, state: s }; }
  export function handleCast(_m: any, s: any) { return { noreply: s }; }
`;

/** Raw workers: `loop` dies on 'die', ends on 'stop'; `stubborn` traps exits and ignores them all. */
export const WORKER = `
  import { receive, on, exit, trapExit, ANY } from 'subnode';
  export function start() { return loop(); }
  export function loop(): unknown {
    return receive(on('die', () => exit('died')), on('stop', () => 'done'), on(ANY, () => loop()));
  }
  export function stubborn() { trapExit(true); return deaf(); }
  export function deaf(): unknown { return receive(() => deaf()); }
`;

export function supKernel(): LocalKernel {
  const k = localKernel();
  k.load('sup', SUP);
  k.load('child', CHILD);
  k.load('worker', WORKER);
  return k;
}

/** `{ id, start: server child, restart, shutdown }`, OTP's `{Id, {supervisor_1, start_child, Args}, Restart, Shutdown, worker, []}`. */
export function child(id: string, restart = 'permanent', shutdown: unknown = 1000, args: unknown[] = []): Record<string, unknown> {
  return { id, start: { server: 'child', args }, restart, shutdown };
}

export function startSup(k: LocalKernel, result: unknown, name = 'sup_test'): Pid {
  const pid = k.kernel.startSupervisor('sup', [result], name ? { name } : {});
  if (!pid) throw new Error('supervisor ignored');
  return pid;
}

export function call(k: LocalKernel, sup: string, $sup: SupRequest['$sup'], arg?: unknown): Promise<any> {
  return k.kernel.supervisorCall(sup as Pid, { $sup, arg });
}

export const which = (k: LocalKernel, sup: string): Promise<any[]> => call(k, sup, 'which_children');

/** OTP's get_child_counts: [specs, active, supervisors, workers]. */
export async function counts(k: LocalKernel, sup: string): Promise<number[]> {
  const c = await call(k, sup, 'count_children');
  return [c.specs, c.active, c.supervisors, c.workers];
}

/** A process that monitors `pid` and forwards the DOWN to the host. */
export async function watch(k: LocalKernel, pid: string): Promise<void> {
  const watcher = spawnFn(
    k,
    (api, target: string) => {
      api.monitor(target);
      return forward(api);
    },
    pid,
  );
  await waitWaiting(k, watcher);
}

/** The reason `pid` ended with, once a `watch` on it reported. */
export async function downReason(k: LocalKernel, pid: string): Promise<unknown> {
  let reason: unknown;
  await waitFor(() => {
    const down = k.outbound.flatMap((o) => o.envelopes).find((e) => e[0] === 0 && e[1] === HOST && (e[2] as any)?.type === 'DOWN' && (e[2] as any).pid === pid);
    if (down) reason = (down[2] as any).reason;
    return down !== undefined;
  }, `DOWN of ${pid}`);
  return reason;
}

/**
 * supervisor_SUITE's terminate/4: ends a child by `how` ('kill', 'shutdown', 'normal' → 'stop',
 * 'abnormal' → 'die') and waits until it is gone and its supervisor has handled its EXIT.
 */
export async function terminate(
  k: LocalKernel,
  sup: string,
  pid: string,
  how: 'kill' | 'shutdown' | 'normal' | 'abnormal' | { shutdown: unknown },
): Promise<void> {
  await watch(k, pid);
  if (how === 'normal') tell(k, pid, 'stop');
  else if (how === 'abnormal') tell(k, pid, 'die');
  else k.kernel.exit(pid as Pid, how);
  const expected = how === 'kill' ? 'killed' : how === 'normal' ? 'normal' : how === 'abnormal' ? 'died' : how;
  expect(await downReason(k, pid)).toEqual(expected);
  await settled(k, sup);
}

/** Waits until a supervisor has handled everything in its mailbox (or is gone). */
export async function settled(k: LocalKernel, sup: string): Promise<void> {
  await waitFor(() => {
    const i = info(k, sup);
    return !i || (i.status === 'waiting' && i.mailbox === 0);
  }, `${sup} to settle`);
}

export const alive = (k: LocalKernel, pid: unknown): boolean => typeof pid === 'string' && info(k, pid) !== undefined;

export { waitDead, info, tell };
