// A pool worker. Workers leave old code when told `switch_code` (a qualified call); the ones
// nobody tells stay behind: a leak that shows up as processes lingering in old code.
import { receive, on, send, type Pid } from 'subnode/process';
import * as worker from './worker.js';

export function start(id: number) {
  return loop(id);
}

export function loop(id: number): unknown {
  return receive(
    on({ type: 'work' }, () => loop(id)),
    on({ type: 'switch_code' }, (m: { ack?: Pid }) => worker.switched(id, m.ack)),
  );
}

/** Entered by a qualified call: this runs in the current version, which then says so if asked. */
export function switched(id: number, ack?: Pid): unknown {
  if (ack) send(ack, { switched: id });
  return loop(id);
}
