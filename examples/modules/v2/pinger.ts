// A critical process, version 2. Its loop continues by a local call, so it stays in the version
// it started in: exactly the kind of process a third load kills on the BEAM.
import { receive, on, send } from 'subnode/process';

export const vsn = 2;

export function start() {
  return loop(0);
}

export function loop(served: number): unknown {
  return receive(
    on({ type: 'ping' }, (m: { from: string }) => {
      send(m.from, { pong: served + 1, vsn });
      return loop(served + 1);
    }),
  );
}
