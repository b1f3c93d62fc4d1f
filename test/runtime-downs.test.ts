/**
 * A node with a NATS connection of its own told that nodes of other hosts went down
 * (src/node/runtime.ts): the host's next messages wait until what those nodes sent on their way is
 * in (a fence each), and downs queued together fence together (one wait, not one per down, each up
 * to 2 s when the server does not answer).
 */
import { describe, expect, it } from 'vitest';
import { NodeRuntime, type Engine, type HostLink } from '../src/node/runtime.js';
import type { HostToNode, NodeData } from '../src/wire/node.js';
import type { Envelope } from '../src/kernel/signals.js';

function runtime() {
  let receive!: (message: HostToNode) => void;
  const link: HostLink = {
    data: { node: 'a', creation: 0 } as NodeData,
    post: () => {},
    listen: (r) => void (receive = r),
    end: () => {},
  };
  const served: string[] = [];
  const engine: Engine = {
    control: () => ({ ok: null }),
    deliver: (envelopes: Envelope[]) => void served.push(`deliver ${String(envelopes[0]![2])}`),
  };
  const fences = new Map<string, () => void>();
  const endpoint = {
    down: (node: string) =>
      new Promise<void>((resolve) => {
        served.push(`fence ${node}`);
        fences.set(node, resolve);
      }),
  };
  const node = new NodeRuntime(link);
  (node as unknown as { endpoint: unknown }).endpoint = endpoint;
  node.serve(engine);
  const down = (name: string): HostToNode => ({ t: 'down', node: name, host: 'H', creation: 1 });
  const deliver = (seq: number): HostToNode => ({ t: 'deliver', from: 'host', envelopes: [[0, '<a.1>', seq] as Envelope] });
  const settle = async (name: string): Promise<void> => {
    fences.get(name)!();
    for (let i = 0; i < 4; i++) await null;
  };
  return { receive, served, down, deliver, settle };
}

describe('downs of nodes of other hosts, on a node with its own connection', () => {
  it("hold the host's next messages until their fence settles; downs queued together fence together", async () => {
    const { receive, served, down, deliver, settle } = runtime();
    receive(down('x'));
    receive(deliver(1));
    receive(down('y'));
    receive(down('z'));
    receive(deliver(2));
    expect(served).toEqual(['fence x']);
    await settle('x');
    // The message before them first; then y's and z's fences at once.
    expect(served).toEqual(['fence x', 'deliver 1', 'fence y', 'fence z']);
    await settle('y');
    expect(served).toHaveLength(4);
    await settle('z');
    expect(served.at(-1)).toBe('deliver 2');
  });
});
