/**
 * Baselines for round trips between threads: role `pinger` / `ponger` do raw `postMessage`
 * ping-pong over a MessageChannel port (the pinger times `n` sequential round trips on request);
 * role `comlink` exposes `{ inc }` to the main thread through comlink (the RPC baseline of
 * `system.call`); role `rpc` answers the same calls with raw postMessage when comlink is absent.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';

type Setup = { role: 'pinger' | 'ponger'; port: MessagePort } | { role: 'comlink' | 'rpc' };
const setup = workerData as Setup;
const main = parentPort!;

/** Imported by name at run time: comlink is only a baseline, not a dependency. */
const COMLINK = 'comlink';
const COMLINK_NODE = 'comlink/dist/esm/node-adapter.mjs';

if (setup.role === 'comlink') {
  const Comlink = (await import(COMLINK)) as { expose(api: unknown, ep: unknown): void };
  const { default: nodeEndpoint } = (await import(COMLINK_NODE)) as { default: (p: unknown) => unknown };
  Comlink.expose({ inc: (x: number) => x + 1 }, nodeEndpoint(main));
} else if (setup.role === 'rpc') {
  main.on('message', ({ id, x }: { id: number; x: number }) => main.postMessage({ id, value: x + 1 }));
} else if (setup.role === 'ponger') {
  const port = setup.port;
  port.on('message', (m: unknown) => port.postMessage(m));
  main.postMessage({ t: 'ready' });
} else if (setup.role === 'pinger') {
  const port = setup.port;
  let left = 0;
  let t0 = 0;
  port.on('message', (m: [number, string, { n: number }]) => {
    if (--left > 0) return port.postMessage([0, m[1], { n: m[2].n + 1 }]);
    main.postMessage({ t: 'done', ms: performance.now() - t0 });
  });
  main.on('message', ({ n }: { n: number }) => {
    left = n;
    t0 = performance.now();
    port.postMessage([0, '<b.1>', { n: 0 }]);
  });
  main.postMessage({ t: 'ready' });
}
