import { it, expect } from 'vitest';
import { localKernel } from './helpers/local-kernel.js';
import { getGc, heapUsedAfterGc, receivedAtLeast, sent, waitFor, HOST, quiesce } from './helpers/kernel-tools.js';

it('pingpong with after + a sleeper', async () => {
  const k = localKernel();
  k.load('pp', `
    import { receive, next, send, self, spawn, after, on, ANY, exit } from 'subnode';
    import * as me from './pp';
    export function sleeper() { return receive(after(15_000, () => 'done')); }
    export function start(n: number) { const p = spawn(me.pong); return me.ping(p, 0, n); }
    export function ping(p: string, i: number, n: number): unknown {
      if (i === n) { send('${HOST}', 'done'); return; }
      send(p, self());
      return receive(on(ANY, () => me.ping(p, i + 1, n)), after(20_000, () => exit('timeout')));
    }
    export function pong(): unknown {
      return receive((from: string) => { send(from, 'pong'); return me.pong(); }, after(20_000, () => exit('timeout')));
    }
  `);
  k.kernel.spawn('pp', 'sleeper', []);
  await quiesce();
  const t0 = performance.now();
  const before = await heapUsedAfterGc();
  k.kernel.spawn('pp', 'start', [200_000]);
  await waitFor(() => sent(k).includes('done'), 'done', 20000);
  const after = await heapUsedAfterGc();
  console.log('pp ms', performance.now() - t0, 'growth MB', (after - before) / 1e6, 'per iter', (after - before) / 200000);
});
