/**
 * Shared tools for the code-management suites (purge, retention, drains, behaviours, upgrades):
 * a versioned server module, version summaries, and ways to ask processes what they run.
 */
import type { LocalKernel } from './local-kernel.js';
import { HOST, sent, tell, waitFor } from './kernel-tools.js';
import { transpile } from '../../src/compiler/transpile.js';
import type { KernelEvent } from '../../src/kernel/types.js';

/** Module source to the kernel's compiled shape, for calls straight to `kernel.load`. */
export function js(module: string, source: string): string {
  return transpile(module, source).js;
}

/**
 * A raw process module `name` at version `vsn`. `loop` stays in its version on local calls.
 * - 'get'          → reports `{ vsn, n, pid }` to the host and loops locally (n + 1)
 * - 'upgrade'      → continues through the module namespace: the current version
 * - 'spawnClosure' → spawns a closure defined in this version; reports `{ spawned }` or `{ refused }`
 * - 'spawnExport'  → spawns this version's own `start` export; reports the same way
 * - 'stop'         → ends normally
 */
export const srvSource = (vsn: number, name = 'srv') => `
  import { receive, on, send, spawn, self } from 'subnode';
  import * as me from './${name}';
  export const vsn = ${vsn};
  export function start(n: number) { return loop(n); }
  function attempt(what: () => unknown): void {
    try { what(); send('${HOST}', { spawned: vsn, pid: self() }); }
    catch (e: any) { send('${HOST}', { refused: e.name, message: e.message, pid: self() }); }
  }
  export function loop(n: number): unknown {
    return receive(
      on('get', () => { send('${HOST}', { vsn, n, pid: self() }); return loop(n + 1); }),
      on('upgrade', () => me.loop(n)),
      on('spawnClosure', () => { attempt(() => spawn(() => 'quick')); return loop(n); }),
      on('spawnExport', () => { attempt(() => spawn(start, 0)); return loop(n); }),
      on('stop', () => 'stopped'),
    );
  }
`;

/** `[version, state, processes]` for each version of `name`, oldest first. */
export function summary(k: LocalKernel, name: string): [number, string, number][] | undefined {
  return k.kernel
    .modules()
    .find((m) => m.name === name)
    ?.versions.map((v) => [v.version, v.state, v.processes]);
}

/** The first message sent to the host at or after index `from` that satisfies `pred`. */
export async function nextSent<T = any>(k: LocalKernel, pred: (m: any) => boolean, from = 0, timeoutMs = 5_000): Promise<T> {
  let found: unknown;
  await waitFor(
    () => {
      const all = sent(k);
      for (let i = from; i < all.length; i++)
        if (pred(all[i])) {
          found = all[i];
          return true;
        }
      return false;
    },
    'a matching message to the host',
    timeoutMs,
  );
  return found as T;
}

/** Asks a `srvSource` process which version it runs: `{ vsn, n, pid }`. */
export async function ask(k: LocalKernel, pid: string): Promise<{ vsn: number; n: number; pid: string }> {
  const from = sent(k).length;
  tell(k, pid, 'get');
  return nextSent(k, (m) => m && typeof m === 'object' && 'vsn' in m && m.pid === pid && 'n' in m, from);
}

/** Events of one type, typed. */
export function eventsOf<T extends KernelEvent['type']>(k: LocalKernel, type: T): Extract<KernelEvent, { type: T }>[] {
  return k.events.filter((e): e is Extract<KernelEvent, { type: T }> => e.type === type);
}

let refs = 0;

/**
 * A `server.call` from the host, at kernel level: sends `{ $call, from }` with a fresh ref and
 * waits for the `{ $reply }` with that ref.
 */
export async function callFromHost(k: LocalKernel, dest: string, request: unknown, timeoutMs = 5_000): Promise<any> {
  const ref = `#Ref<host.test.${++refs}>`;
  const from = sent(k).length;
  tell(k, dest, { $call: request, from: { pid: HOST, ref } });
  const reply = await nextSent<{ value: unknown }>(k, (m) => m?.$reply === ref, from, timeoutMs);
  return reply.value;
}

/** Sends a cast from the host, at kernel level. */
export function castFromHost(k: LocalKernel, dest: string, message: unknown): void {
  tell(k, dest, { $cast: message });
}
