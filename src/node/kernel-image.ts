/**
 * The sandboxed kernel, as each isolate gets it: a fresh isolate with the kernel's modules
 * (src/sandbox/entry.ts and what it imports) loaded, booted with the node's config, and the
 * references the engine calls in through. The modules' sources are read once per thread.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ivm from 'isolated-vm';
import type { SandboxConfig } from '../sandbox/entry.js';

/**
 * An isolate's heap limit unless its limits say (MiB). isolated-vm sizes the young generation by
 * it (2 MiB at 128, 16 MiB from 512 up): below 512 a node busy with messages spends its time in GC.
 */
export const DEFAULT_MEMORY_MB = 512;

/** What the engine calls in the sandbox (src/sandbox/entry.ts `$subnode`). */
export const ENTRIES = ['control', 'deliver', 'deliverEncoded', 'runScheduled', 'fireTimer', 'recover'] as const;
export type Entry = (typeof ENTRIES)[number];

const sources = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const texts = new Map<string, string>();
const text = (path: string): string => {
  let source = texts.get(path);
  if (source === undefined) texts.set(path, (source = readFileSync(path, 'utf8')));
  return source;
};

export interface BootedKernel {
  isolate: ivm.Isolate;
  api: Record<Entry, ivm.Reference<(...args: unknown[]) => unknown>>;
}

/** A new isolate with the kernel booted for `config`; `bridge` is what its kernel may call out to. */
export function bootKernel(memoryMb: number, bridge: Record<string, ivm.Callback>, config: SandboxConfig, cpuMs: number): BootedKernel {
  const isolate = new ivm.Isolate({ memoryLimit: memoryMb });
  try {
    const context = isolate.createContextSync();
    const jail = context.global;
    jail.setSync('globalThis', jail.derefInto());
    const compiled = new Map<string, ivm.Module>();
    const pathOf = new Map<ivm.Module, string>();
    const compile = (path: string): ivm.Module => {
      let module = compiled.get(path);
      if (!module) {
        module = isolate.compileModuleSync(text(path), { filename: `subnode-kernel:${path.slice(sources.length)}` });
        compiled.set(path, module);
        pathOf.set(module, path);
      }
      return module;
    };
    const entry = compile(resolve(sources, 'sandbox/entry.js'));
    entry.instantiateSync(context, (specifier, referrer) => {
      if (!specifier.startsWith('.')) throw new Error(`the sandboxed kernel imports only its own files, not ${specifier}`);
      return compile(resolve(dirname(pathOf.get(referrer)!), specifier));
    });
    entry.evaluateSync();

    context.evalSync('globalThis.$bridge = {}');
    const target = jail.getSync('$bridge', { reference: true }) as ivm.Reference<Record<string, unknown>>;
    for (const [name, callback] of Object.entries(bridge)) target.setSync(name, callback);
    target.release();
    (entry.namespace.getSync('boot', { reference: true }) as ivm.Reference<(config: SandboxConfig) => void>).applySync(undefined, [config], {
      arguments: { copy: true },
      timeout: cpuMs,
    });
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
