import { describe, expect, it } from 'vitest';
import { localKernel } from './helpers/local-kernel.js';

describe('kernel smoke', () => {
  it('runs a counter and upgrades it', async () => {
    const k = localKernel();
    k.load(
      'counter',
      `
      import { receive, on, send } from 'subnode';
      import * as counter from './counter';
      export const vsn = 1;
      export function start(n: number) { return loop(n); }
      export function loop(n: number): unknown {
        return receive(
          on({ type: 'inc' }, () => loop(n + 1)),
          on({ type: 'get' }, (m: any) => { send(m.from, { n, vsn }); return loop(n); }),
          on({ type: 'upgrade' }, () => counter.loop(n)),
        );
      }
    `,
    );
    const pid = k.kernel.spawn('counter', 'start', [0]);
    k.kernel.deliver([
      [0, pid, { type: 'inc' }],
      [0, pid, { type: 'inc' }],
    ]);
    await k.settle();
    expect(k.kernel.processInfo(pid)?.versions[0]).toMatchObject({ module: 'counter', version: 1 });
    k.load(
      'counter',
      `
      import { receive, on, send } from 'subnode';
      export const vsn = 2;
      export function loop(n: number): unknown {
        return receive(on({ type: 'get' }, (m: any) => { send(m.from, { n, vsn }); return loop(n); }));
      }
    `,
    );
    expect(k.kernel.processInfo(pid)?.versions[0]).toMatchObject({ version: 1, state: 'old' });
    k.kernel.deliver([
      [0, pid, { type: 'upgrade' }],
      [0, pid, { type: 'get', from: '<host.1>' }],
    ]);
    await k.settle();
    expect(k.kernel.processInfo(pid)?.versions[0]).toMatchObject({ version: 2, state: 'current' });
    expect(k.outbound.flatMap((o) => o.envelopes)).toEqual([[0, '<host.1>', { n: 2, vsn: 2 }]]);
  });
});
