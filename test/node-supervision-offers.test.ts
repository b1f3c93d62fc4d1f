/**
 * A node's port offer to a node of another host (src/host/node-supervision.ts): answered `remote`
 * (the node sends to it on its own NATS connection) only once the fence confirmed and only if that
 * node did not go down since the offer began; an offer made after a down is not held back by it.
 */
import { describe, expect, it } from 'vitest';
import { NodeSupervision, type NodeContext, type NodeSetup } from '../src/host/node-supervision.js';
import type { NodeBackend } from '../src/host/node-backend.js';
import type { NodeRelease } from '../src/host/node-release.js';

function supervised() {
  const fences: ((confirmed: boolean) => void)[] = [];
  const cluster = { fence: () => new Promise<boolean>((resolve) => fences.push(resolve)), hostOf: () => 'H2' };
  const context = { offer: () => false, route: () => {}, takesEncoded: () => false, cluster } as unknown as NodeContext;
  const supervision = new NodeSupervision({ name: 'a' } as NodeSetup, {} as NodeRelease, context);
  const answers: string[] = [];
  const backend = { direct: true, notify: (m: { t: string; offer?: number }) => void answers.push(m.t === 'down' ? 'down' : `${m.t} ${m.offer}`) };
  const inside = supervision as unknown as { backend: unknown; onMessage(message: unknown, from: unknown): void };
  inside.backend = backend;
  const offer = (n: number): void =>
    inside.onMessage({ t: 'route', node: 'b', envelopes: [], port: { close() {} }, offer: n }, backend as unknown as NodeBackend);
  const settle = async (i: number, confirmed = true): Promise<void> => {
    fences[i]!(confirmed);
    for (let k = 0; k < 4; k++) await null;
  };
  return { supervision, answers, offer, settle };
}

describe('a port offer to a node of another host', () => {
  it('is refused if that node went down while its fence ran; an offer after the down is answered remote', async () => {
    const { supervision, answers, offer, settle } = supervised();
    offer(1);
    supervision.notify({ t: 'down', node: 'b', host: 'H2', creation: 1 });
    offer(2);
    await settle(0);
    await settle(1);
    expect(answers).toEqual(['down', 'refused 1', 'remote 2']);
  });

  it('is refused when the fence is not confirmed, and leaves nothing behind for the next offer', async () => {
    const { answers, offer, settle } = supervised();
    offer(1);
    await settle(0, false);
    offer(2);
    await settle(1);
    expect(answers).toEqual(['refused 1', 'remote 2']);
  });
});
