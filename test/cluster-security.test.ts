/**
 * NATS credentials pass through to the connection (issue #17): a host with the right ones
 * joins, wrong ones are refused with NATS's own error, and a token works too.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { System } from '../src/index.js';
import { NatsServer } from './helpers/nats-server.js';

const servers: NatsServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
}, 30_000);

describe('cluster credentials', () => {
  it('user and password: the right ones join, wrong ones are refused', async () => {
    const nats = await NatsServer.start(['--user', 'host-a', '--pass', 's3cret']);
    servers.push(nats);
    const system = await System.start({ cluster: { servers: nats.url, name: 'A', credentials: { user: 'host-a', pass: 's3cret' } }, nodes: [{ name: 'a1' }] });
    try {
      expect(system.nodes()).toMatchObject([{ name: 'a1', host: 'A', status: 'running' }]);
      expect(system.cluster?.hosts()).toEqual(['A']);
    } finally {
      await system.stop();
    }
    await expect(System.start({ cluster: { servers: nats.url, name: 'B', credentials: { user: 'host-a', pass: 'wrong' } } })).rejects.toThrow(/Authorization/i);
    await expect(System.start({ cluster: { servers: nats.url, name: 'B' } })).rejects.toThrow(/Authorization/i);
  });

  it('a token', async () => {
    const nats = await NatsServer.start(['--auth', 'tok-123']);
    servers.push(nats);
    const system = await System.start({ cluster: { servers: nats.url, name: 'A', credentials: { token: 'tok-123' } } });
    await system.stop();
    await expect(System.start({ cluster: { servers: nats.url, name: 'A', credentials: { token: 'nope' } } })).rejects.toThrow(/Authorization/i);
  });

  it('checks its options', async () => {
    await expect(System.start({ cluster: { servers: 'nats://127.0.0.1:1', name: 'bad name' } })).rejects.toThrow(/bad host name/);
    await expect(System.start({ cluster: { servers: 'nats://127.0.0.1:1', name: 'A', heartbeatMs: 1000, deadAfterMs: 1000 } })).rejects.toThrow(/deadAfterMs/);
  });
});
