/**
 * The calls module code makes to a supervisor (`supervisor.whichChildren(sup, then)`…), each a
 * step like `server.call`: the request goes as a `$call` and the process continues with
 * `then(reply)`. Replies: `{ ok }` or `{ error }` as OTP's `{ok, Pid}` / `{error, Reason}`;
 * whichChildren a list, countChildren `{ specs, active, supervisors, workers }`.
 */
import type { Dest } from './types.js';
import type { SupRequest } from './supervisor-state.js';

type Call = (dest: Dest, request: SupRequest, then: (reply: unknown) => unknown, options?: { timeout?: number }) => unknown;
type Then = (reply: unknown) => unknown;

export function supervisorCalls(call: Call) {
  return {
    startChild: (sup: Dest, specOrArgs: unknown, then: Then, options?: { timeout?: number }) =>
      call(sup, { $sup: 'start_child', arg: specOrArgs }, then, options),
    restartChild: (sup: Dest, id: string, then: Then, options?: { timeout?: number }) => call(sup, { $sup: 'restart_child', arg: id }, then, options),
    terminateChild: (sup: Dest, idOrPid: string, then: Then, options?: { timeout?: number }) =>
      call(sup, { $sup: 'terminate_child', arg: idOrPid }, then, options),
    deleteChild: (sup: Dest, id: string, then: Then, options?: { timeout?: number }) => call(sup, { $sup: 'delete_child', arg: id }, then, options),
    whichChildren: (sup: Dest, then: Then, options?: { timeout?: number }) => call(sup, { $sup: 'which_children' }, then, options),
    countChildren: (sup: Dest, then: Then, options?: { timeout?: number }) => call(sup, { $sup: 'count_children' }, then, options),
  };
}
