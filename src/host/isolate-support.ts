/**
 * What an isolate node needs from this host, checked before one starts so that a missing piece is a
 * clear `Unavailable` rather than a worker dying at start: the optional package isolated-vm
 * (installed and built), and Node started with --no-node-snapshot (isolated-vm cannot run on
 * Node's startup snapshot). Thread nodes need neither.
 */
import { createRequire } from 'node:module';
import { Unavailable } from '../errors.js';

/**
 * Test hook: the module the check loads instead of 'isolated-vm', so that a test can take the
 * real "cannot load" path without uninstalling the package.
 */
export const ISOLATED_VM_ENV = 'SUBNODE_TEST_ISOLATED_VM';

const require = createRequire(import.meta.url);
/** Per module name: undefined if it loaded, else why not. Loading is done once per process. */
const loaded = new Map<string, string | undefined>();

export const ISOLATED_VM_HELP =
  'isolate nodes need the optional package isolated-vm. Install it next to subnode: `npm install isolated-vm`. ' +
  'On Node 22 and 24 that is isolated-vm 6, prebuilt; on Node 20 it is isolated-vm 5, which builds from source ' +
  'and needs python3, make and g++ (on Debian/Ubuntu: apt-get install python3 make g++). Thread nodes work without it.';

export const SNAPSHOT_HELP =
  "isolate nodes need Node started with --no-node-snapshot (isolated-vm cannot run on Node's startup snapshot): " +
  'run `node --no-node-snapshot app.js`, or set NODE_OPTIONS=--no-node-snapshot. The subnode command adds the flag itself.';

export function hasNoSnapshotFlag(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): boolean {
  return execArgv.includes('--no-node-snapshot') || nodeOptions.split(/\s+/).includes('--no-node-snapshot');
}

/** Why isolated-vm cannot be loaded here, or undefined if it can. */
export function isolatedVmProblem(): string | undefined {
  const name = process.env[ISOLATED_VM_ENV] || 'isolated-vm';
  if (!loaded.has(name)) {
    try {
      require(name);
      loaded.set(name, undefined);
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      const why = e.code === 'MODULE_NOT_FOUND' ? `it is not installed (cannot find '${name}')` : `it does not load (${e.message.split('\n')[0]})`;
      loaded.set(name, why);
    }
  }
  return loaded.get(name);
}

/** Throws Unavailable, saying what to do, if an isolate node cannot run on this host. */
export function checkIsolateSupport(node: string): void {
  const ivm = isolatedVmProblem();
  if (ivm !== undefined) {
    throw new Unavailable(`node '${node}' is an isolate node, but isolated-vm is not available: ${ivm}. ${ISOLATED_VM_HELP}`, { node, missing: 'isolated-vm' });
  }
  if (!hasNoSnapshotFlag()) {
    throw new Unavailable(`node '${node}' is an isolate node, but Node was started without --no-node-snapshot. ${SNAPSHOT_HELP}`, {
      node,
      missing: '--no-node-snapshot',
    });
  }
}
