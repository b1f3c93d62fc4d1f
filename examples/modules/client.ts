// A client process: sends `n` numbered hits to a session, 20 a millisecond, by whatever pid it was
// given, then asks the session for its stats and reports them.
import { server, receive, after, send, type Pid } from 'subnode/process';

export function run(session: Pid, me: string, n: number, report: Pid, i = 0): unknown {
  const k = Math.min(20, n - i);
  for (let j = 0; j < k; j++) server.cast(session, { from: me, seq: i + j });
  if (i + k < n) return receive(after(1, () => run(session, me, n, report, i + k)));
  return server.call(session, 'stats', (stats: unknown) => {
    send(report, { sent: n, stats });
    return 'done';
  });
}
