/**
 * Issue #11, item 8: the confused deputy. A call message says where its reply goes (`from`); a node
 * may only name as the caller a process it may address itself. `server.call` stamps `from` with
 * the caller's own pid; a raw message of the call shape naming another node's process is refused
 * in the kernel (NotAllowed) and, on an isolate node, again at the boundary (src/node/calls.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { System, type NodeKind } from '../src/index.js';
import { agent, ask, denials, nothingWithin, record, sink, subvert } from './helpers/sandbox-tools.js';

let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

const echo = `
  export function init() { return 0; }
  export function handleCall(request: unknown, _from: unknown, state: number) { return { reply: { echoed: request }, state }; }
`;
const caller = `
  import { server, send } from 'subnode';
  import { smuggle } from 'subvert';
  export function callOnce(reply: string, dest: string, request: unknown) { return server.call(dest, request, (value) => { send(reply, { ok: value }); }); }
  export function smuggleCall(reply: string, node: string, dest: string, from: unknown) {
    smuggle('<host.999>', node, [[0, dest, { $call: 'smuggled', from }]]);
    send(reply, { smuggled: true });
  }
`;

async function start(kind: NodeKind) {
  system = await System.start({
    nodes: [
      { name: 's', kind, capabilities: { sendTo: ['ok'] }, limits: kind === 'isolate' ? { cpuMsPerSlice: 200 } : {}, modules: { agent, caller, subvert } },
      { name: 'ok', modules: { agent, echo } },
      { name: 'no', modules: { agent, sink } },
    ],
  });
  const events = record(system);
  const inbox = system.inbox();
  const server = await system.node('ok').startServer('echo');
  const victim = await system.node('no').spawn('sink', 'forward', [inbox.pid]);
  return { system, events, inbox, server, victim };
}

describe.each<[string, NodeKind]>([
  ['isolate', 'isolate'],
  ['thread', 'thread'],
])('calls through a granted peer (%s node)', (_label, kind) => {
  it('server.call from the node works: from is its own pid', async () => {
    const { system, inbox, server } = await start(kind);
    await system.node('s').spawn('caller', 'callOnce', [inbox.pid, server, 'hello']);
    expect(await inbox.receive(undefined, 3_000)).toEqual({ ok: { echoed: 'hello' } });
  });

  it("a raw call naming another node's process as the caller: NotAllowed inside, capability_denied, no reply reaches that node", async () => {
    const { system, events, inbox, server, victim } = await start(kind);
    const me = await system.node('s').spawn('agent', 'start', []);
    const outcome = await ask(system, inbox, me, { op: 'send', to: server, msg: { $call: 'leak', from: { pid: victim, ref: 'r1' } } });
    expect(outcome).toMatchObject({ error: { name: 'NotAllowed', message: "node 's' may not have replies sent to node 'no'" } });
    expect(denials(events, 's')).toEqual(["have replies sent to node 'no'"]);
    // a `from` that is a { name, node } destination instead of a pid is refused too
    const named = await ask(system, inbox, me, { op: 'send', to: server, msg: { $call: 'leak', from: { pid: { name: 'x', node: 'no' }, ref: 'r2' } } });
    expect(named).toMatchObject({ error: { name: 'BadArgument' } });
    expect(await nothingWithin(inbox, 300, (m: any) => m && typeof m === 'object' && 'sunk' in m)).toBeUndefined();
  });
});

describe('a subverted kernel (isolate node)', () => {
  it("a call smuggled past the kernel naming another node's process is stopped at the boundary", async () => {
    const { system, events, inbox, server, victim } = await start('isolate');
    await system.node('s').spawn('caller', 'smuggleCall', [inbox.pid, 'ok', server, { pid: victim, ref: 'r3' }]);
    expect(await inbox.receive({ smuggled: true }, 3_000)).toBeTruthy();
    expect(await nothingWithin(inbox, 300, (m: any) => m && typeof m === 'object' && 'sunk' in m)).toBeUndefined();
    expect(denials(events, 's')).toEqual([`a call naming ${victim} as its caller (stopped at the isolate boundary)`]);
  });
});
