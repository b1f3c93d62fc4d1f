/**
 * Flow control enforced in the trusted half of an isolate node: a kernel that ignores "full" (one
 * subverted by its own module code, sending straight onto the wire) has its batches for a node
 * denied once the channel to that node holds FLOW_CAP not yet taken in; an honest kernel, which
 * holds its senders at the window, never meets the cap.
 */
import { describe, expect, it } from 'vitest';
import { encodeBatch } from '../src/sandbox/encode.js';
import { Boundary, FLOW_CAP } from '../src/node/boundary.js';
import { weightOf, WINDOW } from '../src/node/peers.js';
import { ALL } from '../src/kernel/capabilities.js';
import { Sig, type Envelope } from '../src/kernel/signals.js';

describe('flow control at the isolate boundary', () => {
  it('a kernel that keeps sending to a full channel is denied at FLOW_CAP: the port never holds more than the cap and a batch', () => {
    const denied: string[] = [];
    // The runtime's count of weight posted to each node and not yet acknowledged (no receiver acks here).
    const inFlight = new Map<string, number>();
    const boundary = new Boundary(
      'sb',
      ALL,
      {},
      (w) => denied.push(w),
      undefined,
      (node) => inFlight.get(node) ?? 0,
    );
    const text = encodeBatch(Array.from({ length: 2000 }, (_, i) => [Sig.Message, '<b.1>', i] as Envelope));
    let admitted = 0;
    let fullSaid = 0;
    for (let i = 0; i < 5000; i++) {
      // A new entry into the isolate each time: the slice budget alone would not stop it.
      boundary.newSlice();
      const out = boundary.outbound('b', text);
      if (out.length) {
        admitted++;
        inFlight.set('b', (inFlight.get('b') ?? 0) + weightOf(text));
      } else if (boundary.overCap('b')) fullSaid++;
    }
    expect(FLOW_CAP).toBeGreaterThan(WINDOW);
    expect(inFlight.get('b')!).toBeLessThan(FLOW_CAP + weightOf(text));
    expect(admitted).toBeLessThan(5000);
    expect(fullSaid).toBe(5000 - admitted);
    expect(denied[0]).toMatch(/node 'b', whose channel is over its window/);
    // Other nodes' channels are not touched; once b's receiver takes batches in, b's are admitted again.
    boundary.newSlice();
    expect(boundary.outbound('c', text)).toHaveLength(2000);
    inFlight.set('b', WINDOW);
    boundary.newSlice();
    expect(boundary.outbound('b', text)).toHaveLength(2000);
  });
});
