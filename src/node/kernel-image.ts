/**
 * The sandboxed kernel, as each isolate gets it. The kernel's modules (src/sandbox/entry.ts and
 * what it imports) are built into one script (`tsconfig.sandbox.json`: AMD modules in one file,
 * run here with a loader of a few lines), read once per thread and compiled with V8's code cache
 * after the first isolate, so an isolate only runs the kernel's module bodies and boots it with
 * its node's config. A dense thread loads the next node's kernel ahead, once it is idle, so a
 * node's start there is only its boot.
 *
 * Not an isolated-vm snapshot (`Isolate.createSnapshot`): with isolated-vm 5 on Node 20, state
 * restored from one was wrong (closure variables missing, one-character strings corrupted).
 */
import { readFileSync } from 'node:fs';
import ivm from 'isolated-vm';
import type { SandboxConfig } from '../sandbox/entry.js';
import { sliceWallMs } from '../kernel/capabilities.js';

/**
 * An isolate's heap limit unless its limits say (MiB). isolated-vm sizes the young generation by
 * it (2 MiB at 128, 16 MiB from 512 up): below 512 a node busy with messages spends its time in GC.
 */
export const DEFAULT_MEMORY_MB = 512;

/** What the engine calls in the sandbox (src/sandbox/entry.ts `$subnode`). */
export const ENTRIES = ['control', 'deliver', 'deliverEncoded', 'runScheduled', 'fireTimer', 'recover', 'credit'] as const;
export type Entry = (typeof ENTRIES)[number];

export interface BootedKernel {
  isolate: ivm.Isolate;
  api: Record<Entry, ivm.Reference<(...args: unknown[]) => unknown>>;
}

/** The kernel's script: its modules defined, then the entry's `boot` left on the global as `$boot`. */
function kernelScript(): string {
  const amd = readFileSync(
    new URL(import.meta.url.endsWith('.ts') ? '../../dist/src/sandbox/kernel.bundle.js' : '../sandbox/kernel.bundle.js', import.meta.url),
    'utf8',
  );
  // Each module's factory in parentheses: V8 compiles it with the script (so it lands in the code
  // cache) instead of lazily on the first run in every isolate.
  const bundle = amd.replace(/^(define\(.*?\], )function \(require, exports/gm, '$1(function (require, exports').replace(/^\}\);$/gm, '}));');
  return `(function () {
  var defined = {}, made = {};
  function define(name, deps, factory) { defined[name] = [deps, factory]; }
  function load(name) {
    if (Object.prototype.hasOwnProperty.call(made, name)) return made[name];
    var d = defined[name];
    if (!d) throw new Error('the sandboxed kernel has no module ' + name);
    var exports = (made[name] = {});
    d[1].apply(undefined, d[0].map(function (dep) { return dep === 'require' ? load : dep === 'exports' ? exports : load(dep); }));
    return exports;
  }
${bundle}
  globalThis.$boot = load('sandbox/entry').boot;
})();`;
}

/** This thread's kernel script, and V8's code cache for it once the first isolate has compiled it. */
const image: { script?: string; cachedData?: ivm.ExternalCopy<ArrayBuffer> } = {};

/** The kernel's script compiled for `isolate`: from this thread's code cache after the first time (no parse, no compile). */
function compileKernel(isolate: ivm.Isolate): ivm.Script {
  image.script ??= kernelScript();
  const options = { filename: 'subnode-kernel.js' };
  if (image.cachedData) {
    const script = isolate.compileScriptSync(image.script, { ...options, cachedData: image.cachedData }) as ivm.Script & { cachedDataRejected?: boolean };
    if (!script.cachedDataRejected) return script;
  }
  const script = isolate.compileScriptSync(image.script, { ...options, produceCachedData: true }) as ivm.Script & ivm.CachedDataResult;
  image.cachedData = script.cachedData;
  return script;
}

/** An isolate with the kernel's modules run, not yet booted for a node. */
interface Unbooted {
  isolate: ivm.Isolate;
  context: ivm.Context;
  memoryMb: number;
}

/** What running the kernel's module bodies may take, wall time (they take a few ms). */
const LOAD_WALL_MS = 10 * sliceWallMs({});

/** A new isolate with the kernel's modules run (no node's code or config in it yet). */
function loadKernel(memoryMb: number): Unbooted {
  const isolate = new ivm.Isolate({ memoryLimit: memoryMb });
  try {
    const context = isolate.createContextSync();
    const jail = context.global;
    jail.setSync('globalThis', jail.derefInto());
    compileKernel(isolate).runSync(context, { timeout: LOAD_WALL_MS });
    return { isolate, context, memoryMb };
  } catch (error) {
    if (!isolate.isDisposed) isolate.dispose();
    throw error;
  }
}

/**
 * The kernel a dense thread loaded ahead for its next node (`loadAhead`), so a node's start is only
 * its boot: making the isolate and its context, compiling and running the kernel's modules were
 * three quarters of a start. Used once, by one node, and only if that node's memory limit is the
 * one it was made with.
 */
let ahead: Unbooted | undefined;

/** Loads the next node's kernel now (a dense thread, when it is idle after starting a node). */
export function loadAhead(memoryMb: number): void {
  if (ahead?.memoryMb === memoryMb) return;
  dropAhead();
  ahead = loadKernel(memoryMb);
}

/** Disposes the kernel loaded ahead, if any (the thread is closing). */
export function dropAhead(): void {
  if (ahead && !ahead.isolate.isDisposed) ahead.isolate.dispose();
  ahead = undefined;
}

/** The kernel loaded ahead if it was made with `memoryMb` (and is still alive), else a new one. */
function takeKernel(memoryMb: number): Unbooted {
  const taken = ahead;
  if (taken?.memoryMb !== memoryMb || taken.isolate.isDisposed) return loadKernel(memoryMb);
  ahead = undefined;
  return taken;
}

/** An isolate with the kernel booted for `config`; `bridge` is what its kernel may call out to. */
export function bootKernel(memoryMb: number, bridge: Record<string, ivm.Callback>, config: SandboxConfig, wallMs: number): BootedKernel {
  const { isolate, context } = takeKernel(memoryMb);
  try {
    const jail = context.global;
    context.evalSync('globalThis.$bridge = {}');
    const target = jail.getSync('$bridge', { reference: true }) as ivm.Reference<Record<string, unknown>>;
    for (const [name, callback] of Object.entries(bridge)) target.setSync(name, callback);
    target.release();
    const boot = jail.getSync('$boot', { reference: true }) as ivm.Reference<(config: SandboxConfig) => void>;
    jail.deleteSync('$boot');
    boot.applySync(undefined, [config], { arguments: { copy: true }, timeout: wallMs });
    boot.release();
    const api = jail.getSync('$subnode', { reference: true }) as ivm.Reference<Record<string, unknown>>;
    const refs = Object.fromEntries(ENTRIES.map((name) => [name, api.getSync(name, { reference: true })])) as BootedKernel['api'];
    api.release();
    jail.deleteSync('$subnode');
    return { isolate, api: refs };
  } catch (error) {
    if (!isolate.isDisposed) isolate.dispose();
    throw error;
  }
}
