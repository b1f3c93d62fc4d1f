/**
 * Behaviours: `server` (gen_server-like) and `statem` (gen_statem-like, with a stack of callback
 * modules), and the system protocol (sys): suspend, resume, changeCode, getState, replaceState.
 * Kernel level on a local kernel; one System test checks the same over a real node.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { clockedKernel, localKernel, type LocalKernel } from './helpers/local-kernel.js';
import { HOST, errorOf, exitEvents, forward, info, quiesce, sent, spawnFn, tell, waitDead, waitFor, waitWaiting } from './helpers/kernel-tools.js';
import { callFromHost, castFromHost, eventsOf, nextSent } from './helpers/code-tools.js';
import { BadArgument, NoProcess, Refused, UnknownFunction, UnknownModule } from '../src/errors.js';
import { System } from '../src/index.js';

// ---- callback modules ---------------------------------------------------------------------

/** A server: a number `n`, a deferred reply slot, and every callback reporting to the host. */
const kv = (vsn: number | string, extra = '') => `
  import { send, server } from 'subnode';
  export const vsn = ${JSON.stringify(vsn)};
  export function init(start: number, owner: string = '${HOST}') {
    if (start < 0) throw new Error('negative start');
    return { n: start, owner, pending: null as unknown };
  }
  export function handleCall(req: any, from: any, state: any) {
    switch (req?.op) {
      case 'get': return { reply: { vsn, n: state.n }, state };
      case 'add': return { reply: state.n + req.by, state: { ...state, n: state.n + req.by } };
      case 'later': return { noreply: { ...state, pending: from } };
      case 'hang': return { noreply: state };
      case 'crash': throw new Error('handleCall crashed');
      case 'stop':
        return 'reply' in req ? { stop: req.reason, reply: req.reply, state: { ...state, stopping: true } } : { stop: req.reason, state: { ...state, stopping: true } };
    }
    return { reply: 'unknown', state };
  }
  export function handleCast(msg: any, state: any) {
    if (msg?.op === 'add') return { noreply: { ...state, n: state.n + msg.by } };
    if (msg?.op === 'release') { server.reply(state.pending, { released: msg.value, vsn }); return { noreply: { ...state, pending: null } }; }
    if (msg?.op === 'stop') return { stop: msg.reason, state: { ...state, castStop: true } };
    return { noreply: state };
  }
  export function handleInfo(msg: any, state: any) {
    send(state.owner, { info: msg, n: state.n, vsn });
    return { noreply: state };
  }
  export function terminate(reason: unknown, state: any) { send(state.owner, { terminate: reason, state }); }
  ${extra}
`;

/** Calls from inside a process, reporting what happened to the host. */
const client = `
  import { server, statem, send, receive, on, after } from 'subnode';
  export function call(dest: any, req: any, timeout?: number) {
    return server.call(dest, req, (reply: unknown) => { send('${HOST}', { reply }); return 'done'; }, timeout === undefined ? undefined : { timeout });
  }
  export function callStatem(dest: any, req: any) {
    return statem.call(dest, req, (reply: unknown) => { send('${HOST}', { reply }); return 'done'; });
  }
  export function callWithFallback(dest: any, req: any, timeout: number) {
    return server.call(dest, req, (reply: unknown) => { send('${HOST}', { reply }); },
      { timeout, onTimeout: () => { send('${HOST}', { timedOut: req }); return idle(); } });
  }
  export function idle(): unknown { return receive(on('stop', () => 'stopped')); }
  /** A call, then whatever comes next within 100 ms. */
  export function callThenListen(dest: any, req: any) {
    return server.call(dest, req, (reply: unknown) => {
      send('${HOST}', { reply });
      return receive((m: unknown) => { send('${HOST}', { stray: m }); }, after(100, () => { send('${HOST}', 'quiet'); }));
    });
  }
  export function cast(dest: any, msg: any) { server.cast(dest, msg); statem.cast(dest, { viaStatem: msg }); send('${HOST}', 'cast sent'); }
`;

/** A statem: a door, locked or open, with a code. */
const door = (vsn: number, extra = '') => `
  import { send } from 'subnode';
  export const vsn = ${vsn};
  export function init(code: string) { return { state: 'locked', data: { code, wrong: 0 } }; }
  export function handleEvent(type: string, content: any, state: string, data: any, from: any) {
    if (type === 'info') { send('${HOST}', { info: content, state, module: 'door', vsn }); return {}; }
    if (type === 'call' && content === 'peek') return { reply: { state, data, module: 'door', vsn, hasFrom: typeof from?.ref === 'string' } };
    if (type === 'call' && content?.op === 'push') return { reply: 'pushed', callbackModule: { push: content.module } };
    if (type === 'call' && content?.op === 'change') return { reply: 'changed', callbackModule: { change: content.module } };
    if (type === 'call' && content?.op === 'stop') return { reply: 'stopping', stop: content.reason };
    if (state === 'locked' && type === 'call' && content?.op === 'unlock') {
      return content.code === data.code
        ? { state: 'open', reply: 'opened', data: { ...data, wrong: 0 } }
        : { reply: 'wrong code', data: { ...data, wrong: data.wrong + 1 } };
    }
    if (state === 'open' && type === 'cast' && content === 'lock') return { state: 'locked' };
    if (type === 'cast' && content === 'nothing') return undefined;
    return {};
  }
  export function terminate(reason: unknown, st: unknown) { send('${HOST}', { terminate: reason, st }); }
  ${extra}
`;

/** A callback module pushed on a door: handles events until it pops itself. */
const maint = (vsn: number) => `
  import { send } from 'subnode';
  export const vsn = ${vsn};
  export function handleEvent(type: string, content: any, state: string, data: any) {
    if (type === 'call' && content === 'peek') return { reply: { state, data, module: 'maint', vsn } };
    if (type === 'call' && content === 'pop') return { reply: 'popped', callbackModule: 'pop' };
    if (type === 'cast') return { data: { ...data, log: [...(data.log ?? []), content] } };
    if (type === 'info') { send('${HOST}', { info: content, module: 'maint', vsn }); return {}; }
    return {};
  }
`;

function setup(): LocalKernel {
  const k = localKernel();
  k.load('kv', kv(1));
  k.load('client', client);
  return k;
}

function startKv(k: LocalKernel, start = 0, options: { name?: string } = {}): string {
  return k.kernel.startBehaviour('server', 'kv', [start], options);
}

/** A predicate: the message is an object with this key. */
const has =
  (key: string) =>
  (m: unknown): boolean =>
    typeof m === 'object' && m !== null && key in m;

function thrownBy(fn: () => unknown): any {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

/** A harness process monitoring `pid`, forwarding the DOWN (and anything else) to the host. */
async function watch(k: LocalKernel, pid: string): Promise<string> {
  const watcher = spawnFn(
    k,
    (api, target: string) => {
      api.monitor(target);
      return forward(api);
    },
    pid,
  );
  await waitWaiting(k, watcher);
  return watcher;
}

// ---------------------------------------------------------------------------------------------

describe('server callbacks', () => {
  it('init, handleCall, handleCast and handleInfo see and thread the state', async () => {
    const k = setup();
    const pid = startKv(k, 5);
    expect(info(k, pid)).toMatchObject({ initial: 'server:kv', behaviour: { kind: 'server', module: 'kv', stack: [], vsn: 1 } });
    expect(k.kernel.getState(pid as never)).toEqual({ n: 5, owner: HOST, pending: null });
    expect(await callFromHost(k, pid, { op: 'get' })).toEqual({ vsn: 1, n: 5 });
    expect(await callFromHost(k, pid, { op: 'add', by: 2 })).toBe(7);
    castFromHost(k, pid, { op: 'add', by: 10 });
    tell(k, pid, 'hello');
    expect(await nextSent(k, (m) => m?.info === 'hello')).toEqual({ info: 'hello', n: 17, vsn: 1 });
    expect(await callFromHost(k, pid, { op: 'get' })).toEqual({ vsn: 1, n: 17 });
    expect(info(k, pid)?.status).toBe('waiting');
  });

  it('{ stop } from a call ends the process with the reason, after terminate(reason, state), replying if asked', async () => {
    const k = setup();
    const pid = startKv(k, 1);
    const watcher = await watch(k, pid);
    expect(await callFromHost(k, pid, { op: 'stop', reason: { custom: 'bye' }, reply: 'see you' })).toBe('see you');
    await waitDead(k, pid);
    expect(await nextSent(k, has('terminate'))).toEqual({ terminate: { custom: 'bye' }, state: { n: 1, owner: HOST, pending: null, stopping: true } });
    expect(await nextSent(k, (m) => m?.type === 'DOWN')).toMatchObject({ type: 'DOWN', pid, reason: { custom: 'bye' } });
    expect(exitEvents(k, pid).map((e) => e.reason)).toEqual([{ custom: 'bye' }]);
    expect(k.kernel.behavioursOf('kv')).toEqual([]);
    expect(info(k, watcher)).toBeDefined();
  });

  it('{ stop } without a reply: the caller gets no reply, and a cast can stop the server too', async () => {
    const k = setup();
    const silent = startKv(k, 1);
    const caller = k.kernel.spawn('client', 'call', [silent, { op: 'stop', reason: 'shutdown' }]);
    await waitDead(k, caller);
    // No reply came: the caller's call failed on the server's exit.
    expect(exitEvents(k, caller)[0]?.reason).toEqual({ call_failed: { dest: silent, reason: 'shutdown' } });
    expect(sent(k).filter(has('reply'))).toEqual([]);
    expect(await nextSent(k, (m) => m?.terminate === 'shutdown')).toMatchObject({ state: { stopping: true } });

    const casted = startKv(k, 2);
    castFromHost(k, casted, { op: 'stop', reason: 'normal' });
    await waitDead(k, casted);
    expect(await nextSent(k, (m) => m?.terminate === 'normal')).toMatchObject({ state: { n: 2, castStop: true } });
    expect(exitEvents(k, casted)).toEqual([]); // normal is quiet
  });

  it('an init that throws is an error (Refused) and leaves no process, name or index entry behind', () => {
    const k = setup();
    const before = k.kernel.processes();
    const error = thrownBy(() => k.kernel.startBehaviour('server', 'kv', [-1], { name: 'neg' }));
    expect(error).toBeInstanceOf(Refused);
    expect(error.message).toMatch(/negative start/);
    expect(error.details).toMatchObject({ module: 'kv', reason: { error: { name: 'Error', message: 'negative start' } } });
    expect(k.kernel.processes()).toEqual(before);
    expect(k.kernel.whereis('neg')).toBeUndefined();
    expect(k.kernel.behavioursOf('kv')).toEqual([]);
    // The name is free for the next one.
    const ok = startKv(k, 0, { name: 'neg' });
    expect(k.kernel.whereis('neg')).toBe(ok);
  });

  it('init that exits, a missing init or module, and a bad statem init are refused', () => {
    const k = setup();
    k.load('exiting', `import { exit } from 'subnode'; export function init() { exit({ no: 'thanks' }); }`);
    k.load('noinit', `export function handleCall() { return { reply: 1, state: 1 }; }`);
    k.load('badstatem', `export function init() { return { data: 1 }; }`);
    const exited = thrownBy(() => k.kernel.startBehaviour('server', 'exiting'));
    expect(exited).toBeInstanceOf(Refused);
    expect(exited.details).toMatchObject({ reason: { no: 'thanks' } });
    expect(() => k.kernel.startBehaviour('server', 'noinit')).toThrow(UnknownFunction);
    expect(() => k.kernel.startBehaviour('server', 'missing')).toThrow(UnknownModule);
    expect(() => k.kernel.startBehaviour('statem', 'badstatem')).toThrow(Refused);
    expect(() => k.kernel.startBehaviour('bogus' as never, 'kv')).toThrow(BadArgument);
    expect(k.kernel.processes()).toEqual([]);
  });

  it('a name registered inside a failing init is not left behind', () => {
    const k = setup();
    k.load(
      'greedy',
      `
      import { register } from 'subnode';
      export function init() { register('greedy'); throw new Error('changed my mind'); }
    `,
    );
    expect(() => k.kernel.startBehaviour('server', 'greedy')).toThrow(Refused);
    expect(k.kernel.processes()).toEqual([]);
    expect(k.kernel.whereis('greedy')).toBeUndefined();
  });
});

describe('server.call inside the node', () => {
  it('the reply arrives to then(); calls by registered name work too', async () => {
    const k = setup();
    const pid = startKv(k, 3, { name: 'store' });
    const byPid = k.kernel.spawn('client', 'call', [pid, { op: 'add', by: 1 }]);
    await waitDead(k, byPid);
    const byName = k.kernel.spawn('client', 'call', ['store', { op: 'get' }]);
    await waitDead(k, byName);
    expect(sent(k)).toEqual([{ reply: 4 }, { reply: { vsn: 1, n: 4 } }]);
    expect(exitEvents(k)).toEqual([]);
  });

  it('a timeout calls onTimeout, or exits the caller with { call_timeout }', async () => {
    const k = setup();
    const pid = startKv(k);
    const patient = k.kernel.spawn('client', 'callWithFallback', [pid, { op: 'hang' }, 30]);
    expect(await nextSent(k, has('timedOut'))).toEqual({ timedOut: { op: 'hang' } });
    await waitWaiting(k, patient);
    expect(exitEvents(k, patient)).toEqual([]);

    const strict = k.kernel.spawn('client', 'call', [pid, { op: 'hang' }, 30]);
    await waitDead(k, strict);
    expect(exitEvents(k, strict)[0]?.reason).toEqual({ call_timeout: { dest: pid, request: { op: 'hang' }, timeout: 30 } });
    // The server is fine.
    expect(await callFromHost(k, pid, { op: 'get' })).toEqual({ vsn: 1, n: 0 });
  });

  it('the callee dying mid-call makes the caller exit with { call_failed }', async () => {
    const k = setup();
    const pid = startKv(k);
    const caller = k.kernel.spawn('client', 'call', [pid, { op: 'crash' }]);
    await waitDead(k, caller);
    const reason = exitEvents(k, caller)[0]?.reason as { call_failed: { dest: string; reason: unknown } };
    expect(reason.call_failed.dest).toBe(pid);
    expect(errorOf(reason.call_failed.reason)).toEqual({ name: 'Error', message: 'handleCall crashed' });
    expect(info(k, pid)).toBeUndefined();
  });

  it('a call to a name nobody holds fails the caller at once', async () => {
    const k = setup();
    const caller = k.kernel.spawn('client', 'call', ['nobody', { op: 'get' }]);
    await waitDead(k, caller);
    expect(errorOf(exitEvents(k, caller)[0]?.reason)).toMatchObject({ name: 'NoProcess' });
  });

  it("after a call completes, its monitor leaves nothing in the caller's mailbox (even if the server then stops)", async () => {
    // gen_server:call demonitors with [flush]: a DOWN for the call's monitor never reaches the
    // caller's code, even when the server ends right after replying.
    const k = setup();
    const pid = startKv(k);
    const caller = k.kernel.spawn('client', 'callThenListen', [pid, { op: 'stop', reason: 'normal', reply: 'last words' }]);
    await waitDead(k, caller);
    expect(sent(k).filter((m) => typeof m === 'string' || has('reply')(m) || has('stray')(m))).toEqual([{ reply: 'last words' }, 'quiet']);
  });

  it('server.cast (and statem.cast) from a process delivers a cast', async () => {
    const k = setup();
    const pid = startKv(k, 1);
    k.kernel.spawn('client', 'cast', [pid, { op: 'add', by: 5 }]);
    await nextSent(k, (m) => m === 'cast sent');
    expect(await callFromHost(k, pid, { op: 'get' })).toEqual({ vsn: 1, n: 6 });
  });

  it('server.reply(from) answers a call later: handleCall returns { noreply } and a cast releases it', async () => {
    const k = setup();
    const pid = startKv(k);
    const caller = k.kernel.spawn('client', 'call', [pid, { op: 'later' }]);
    await waitFor(() => (k.kernel.getState(pid as never) as { pending: unknown }).pending !== null, 'the call to be parked');
    await quiesce();
    expect(info(k, caller)?.status).toBe('waiting');
    expect(sent(k)).toEqual([]);
    castFromHost(k, pid, { op: 'release', value: 42 });
    await waitDead(k, caller);
    expect(sent(k)).toEqual([{ reply: { released: 42, vsn: 1 } }]);
    expect(exitEvents(k)).toEqual([]);
  });
});

describe('current callback version', () => {
  it('every message goes to the current version: load v2 without codeChange and the next call is answered by v2', async () => {
    const k = setup();
    const pid = startKv(k, 1);
    expect(await callFromHost(k, pid, { op: 'get' })).toEqual({ vsn: 1, n: 1 });
    k.load('kv', kv(2));
    expect(await callFromHost(k, pid, { op: 'get' })).toEqual({ vsn: 2, n: 1 });
    tell(k, pid, 'ping');
    expect(await nextSent(k, (m) => m?.info === 'ping')).toMatchObject({ vsn: 2 });
    k.load('kv', kv(3));
    castFromHost(k, pid, { op: 'add', by: 1 });
    expect(await callFromHost(k, pid, { op: 'get' })).toEqual({ vsn: 3, n: 2 });
    // A behaviour's own loop is kernel code: the process lingers in no version of kv.
    expect(k.kernel.lingering('kv')).toEqual([]);
    expect(info(k, pid)?.behaviour?.vsn).toBe(3);
  });
});

// ---------------------------------------------------------------------------------------------

describe('suspend and resume', () => {
  it('a suspended server queues its messages; resume handles them in order', async () => {
    const k = setup();
    const pid = startKv(k, 0);
    k.kernel.suspend(pid as never);
    k.kernel.suspend(pid as never); // twice is fine
    expect(info(k, pid)?.status).toBe('suspended');
    castFromHost(k, pid, { op: 'add', by: 1 });
    tell(k, pid, 'first');
    castFromHost(k, pid, { op: 'add', by: 10 });
    tell(k, pid, 'second');
    const reply = callFromHost(k, pid, { op: 'get' });
    await quiesce(20);
    expect(sent(k)).toEqual([]);
    expect(info(k, pid)).toMatchObject({ status: 'suspended', mailbox: 5 });
    k.kernel.resume(pid as never);
    expect(await reply).toEqual({ vsn: 1, n: 11 });
    expect(sent(k).filter(has('info'))).toEqual([
      { info: 'first', n: 1, vsn: 1 },
      { info: 'second', n: 11, vsn: 1 },
    ]);
    expect(info(k, pid)).toMatchObject({ status: 'waiting', mailbox: 0 });
    k.kernel.resume(pid as never); // not suspended: nothing happens
    expect(() => k.kernel.suspend('<a.999>' as never)).toThrow(NoProcess);
  });

  it('a raw process can be suspended: its messages wait, and it picks them up in order on resume', async () => {
    const k = setup();
    const pid = spawnFn(k, forward);
    await waitWaiting(k, pid);
    k.kernel.suspend(pid as never);
    tell(k, pid, 'm1', 'm2', 'm3');
    await quiesce(20);
    expect(sent(k)).toEqual([]);
    k.kernel.resume(pid as never);
    await waitFor(() => sent(k).length === 3, 'three forwarded');
    expect(sent(k)).toEqual(['m1', 'm2', 'm3']);
  });

  it('a receive timeout does not fire while suspended and keeps its deadline across the suspension', async () => {
    // The clock moves only when the test says: time passing is a step here, not a wait.
    const k = clockedKernel();
    const pid = spawnFn(k, (api) =>
      api.receive(
        api.on('never', () => 'x'),
        api.after(300, () => {
          api.send(HOST, 'timeout');
        }),
      ),
    );
    await waitWaiting(k, pid);
    k.advance(20);
    k.kernel.suspend(pid as never);
    k.advance(150);
    await quiesce();
    expect(sent(k)).toEqual([]);
    k.kernel.resume(pid as never);
    expect(info(k, pid)?.status).toBe('waiting');
    // The original deadline (300 ms): not fired at resume (170 ms), nor restarted then (470 ms),
    // nor paused during the suspension (450 ms).
    k.advance(129);
    await quiesce();
    expect(sent(k)).toEqual([]);
    k.advance(1);
    await waitFor(() => sent(k).length === 1, 'the timeout at 300 ms');
    expect(sent(k)).toEqual(['timeout']);
  });

  it('a receive timeout that passed during the suspension fires on resume, not before', async () => {
    const k = clockedKernel();
    const pid = spawnFn(k, (api) =>
      api.receive(
        api.on('never', () => 'x'),
        api.after(40, () => {
          api.send(HOST, 'timeout');
        }),
      ),
    );
    await waitWaiting(k, pid);
    k.kernel.suspend(pid as never);
    // Its 40 ms timeout passes while it is suspended.
    k.advance(100);
    await quiesce();
    expect(sent(k)).toEqual([]);
    expect(info(k, pid)?.status).toBe('suspended');
    k.kernel.resume(pid as never);
    await waitDead(k, pid, 1_000);
    expect(sent(k)).toEqual(['timeout']);
  });

  it('a message that came during the suspension wins over a timeout that passed meanwhile', async () => {
    const k = clockedKernel();
    const pid = spawnFn(k, (api) =>
      api.receive(
        api.on('go', () => {
          api.send(HOST, 'message');
        }),
        api.after(30, () => {
          api.send(HOST, 'timeout');
        }),
      ),
    );
    await waitWaiting(k, pid);
    k.kernel.suspend(pid as never);
    tell(k, pid, 'go');
    // Its 30 ms timeout passes while it is suspended, the message already in its mailbox.
    k.advance(60);
    await quiesce();
    k.kernel.resume(pid as never);
    await waitDead(k, pid);
    expect(sent(k)).toEqual(['message']);
  });
});

// ---------------------------------------------------------------------------------------------

describe('changeCode, getState, replaceState', () => {
  const kvV2 = kv(
    2,
    `
    export function codeChange(oldVsn: unknown, state: any, extra: any) {
      if (extra === 'mutateThenThrow') {
        state.n = -1; state.nested.list.push('junk'); state.nested.map.set('k', 'junk'); delete state.owner;
        throw new Error('half way');
      }
      if (extra === 'undefined') return undefined;
      return { ...state, n: state.n * 100, from: oldVsn, extra };
    }
  `,
  );

  it('requires a suspended behaviour process using that module', () => {
    const k = setup();
    const pid = startKv(k, 1);
    k.load('kv', kvV2);
    expect(() => k.kernel.changeCode(pid as never, 'kv')).toThrow(Refused);
    k.kernel.suspend(pid as never);
    expect(() => k.kernel.changeCode(pid as never, 'client')).toThrow(BadArgument);
    const raw = k.kernel.spawn('client', 'idle');
    k.kernel.suspend(raw as never);
    expect(() => k.kernel.changeCode(raw as never, 'client')).toThrow(BadArgument);
    expect(() => k.kernel.changeCode('<a.999>' as never, 'kv')).toThrow(NoProcess);
    expect(k.kernel.getState(pid as never)).toEqual({ n: 1, owner: HOST, pending: null });
  });

  it("converts the state with the current version's codeChange(oldVsn, state, extra); events say so", async () => {
    const k = setup();
    const pid = startKv(k, 2);
    k.kernel.suspend(pid as never);
    k.load('kv', kvV2);
    expect(k.kernel.changeCode(pid as never, 'kv', undefined, { why: 'test' })).toEqual({ from: 1, to: 2 });
    expect(k.kernel.getState(pid as never)).toEqual({ n: 200, owner: HOST, pending: null, from: 1, extra: { why: 'test' } });
    expect(info(k, pid)?.behaviour?.vsn).toBe(2);
    expect(eventsOf(k, 'code_changed')).toEqual([{ type: 'code_changed', node: 'a', pid, module: 'kv', from: 1, to: 2 }]);
    k.kernel.resume(pid as never);
    expect(await callFromHost(k, pid, { op: 'get' })).toEqual({ vsn: 2, n: 200 });
  });

  it('works on a copy: a codeChange that mutates the state and then throws leaves it identical and deep-equal', () => {
    const k = setup();
    const pid = startKv(k, 1);
    const state = { n: 5, owner: HOST, pending: null, nested: { list: [1, 2], map: new Map([['k', 'v']]), when: new Date(0) } };
    k.kernel.replaceState(pid as never, state);
    const snapshot = structuredClone(state);
    k.kernel.suspend(pid as never);
    k.load('kv', kvV2);
    const error = thrownBy(() => k.kernel.changeCode(pid as never, 'kv', undefined, 'mutateThenThrow'));
    expect(error).toBeInstanceOf(Refused);
    expect(error.message).toMatch(/half way/);
    expect(k.kernel.getState(pid as never)).toBe(state);
    expect(state).toEqual(snapshot);
    expect(info(k, pid)?.behaviour?.vsn).toBe(1);
    expect(eventsOf(k, 'code_changed')).toEqual([]);
  });

  it('a codeChange returning undefined is refused and the state kept', () => {
    const k = setup();
    const pid = startKv(k, 1);
    const state = k.kernel.getState(pid as never);
    k.kernel.suspend(pid as never);
    k.load('kv', kvV2);
    expect(() => k.kernel.changeCode(pid as never, 'kv', undefined, 'undefined')).toThrow(Refused);
    expect(k.kernel.getState(pid as never)).toBe(state);
    expect(info(k, pid)?.behaviour?.vsn).toBe(1);
  });

  it('without a codeChange export, only the vsn moves on; an explicit oldVsn is passed as given', async () => {
    const k = setup();
    const pid = startKv(k, 1);
    const state = k.kernel.getState(pid as never);
    k.kernel.suspend(pid as never);
    k.load('kv', kv('two'));
    expect(k.kernel.changeCode(pid as never, 'kv')).toEqual({ from: 1, to: 'two' });
    expect(k.kernel.getState(pid as never)).toBe(state);
    k.load('kv', kvV2);
    expect(k.kernel.changeCode(pid as never, 'kv', { down: 3 })).toEqual({ from: { down: 3 }, to: 2 });
    expect(k.kernel.getState(pid as never)).toMatchObject({ n: 100, from: { down: 3 } });
  });

  it('getState and replaceState read and swap the state; non-behaviour and unknown pids are errors', async () => {
    const k = setup();
    const pid = startKv(k, 1);
    k.kernel.replaceState(pid as never, { n: 41, owner: HOST, pending: null });
    expect(await callFromHost(k, pid, { op: 'add', by: 1 })).toBe(42);
    expect(k.kernel.getState(pid as never)).toEqual({ n: 42, owner: HOST, pending: null });
    const raw = k.kernel.spawn('client', 'idle');
    expect(() => k.kernel.getState(raw as never)).toThrow(BadArgument);
    expect(() => k.kernel.replaceState(raw as never, 1)).toThrow(BadArgument);
    expect(() => k.kernel.getState('<a.999>' as never)).toThrow(NoProcess);
  });
});

// ---------------------------------------------------------------------------------------------

describe('statem', () => {
  function setupDoor(): { k: LocalKernel; pid: string } {
    const k = setup();
    k.load('door', door(1));
    k.load('maint', maint(1));
    k.load('door2', door(20));
    const pid = k.kernel.startBehaviour('statem', 'door', ['1234']);
    return { k, pid };
  }

  it('handleEvent gets calls, casts and infos; transitions state and data; replies', async () => {
    const { k, pid } = setupDoor();
    expect(info(k, pid)).toMatchObject({ initial: 'statem:door', behaviour: { kind: 'statem', module: 'door', stack: [], vsn: 1 } });
    expect(k.kernel.getState(pid as never)).toEqual({ state: 'locked', data: { code: '1234', wrong: 0 } });
    expect(await callFromHost(k, pid, 'peek')).toEqual({ state: 'locked', data: { code: '1234', wrong: 0 }, module: 'door', vsn: 1, hasFrom: true });
    expect(await callFromHost(k, pid, { op: 'unlock', code: '0000' })).toBe('wrong code');
    expect(k.kernel.getState(pid as never)).toEqual({ state: 'locked', data: { code: '1234', wrong: 1 } });
    expect(await callFromHost(k, pid, { op: 'unlock', code: '1234' })).toBe('opened');
    tell(k, pid, 'knock');
    expect(await nextSent(k, (m) => m?.info === 'knock')).toEqual({ info: 'knock', state: 'open', module: 'door', vsn: 1 });
    castFromHost(k, pid, 'nothing'); // handleEvent returning undefined keeps everything
    castFromHost(k, pid, 'lock');
    expect(await callFromHost(k, pid, 'peek')).toMatchObject({ state: 'locked', data: { wrong: 0 } });
    // From another process, through statem.call.
    const caller = k.kernel.spawn('client', 'callStatem', [pid, { op: 'unlock', code: '1234' }]);
    await waitDead(k, caller);
    expect(sent(k)).toContainEqual({ reply: 'opened' });
  });

  it('stop ends it with the reason after terminate, replying first', async () => {
    const { k, pid } = setupDoor();
    expect(await callFromHost(k, pid, { op: 'stop', reason: { done: true } })).toBe('stopping');
    await waitDead(k, pid);
    expect(await nextSent(k, has('terminate'))).toEqual({ terminate: { done: true }, st: { state: 'locked', data: { code: '1234', wrong: 0 } } });
    expect(exitEvents(k, pid).map((e) => e.reason)).toEqual([{ done: true }]);
    expect(k.kernel.behavioursOf('door')).toEqual([]);
  });

  it('callbackModule push sends events to the pushed module (its current version); pop returns; behavioursOf follows', async () => {
    const { k, pid } = setupDoor();
    const other = k.kernel.startBehaviour('statem', 'door', ['0000']);
    expect(k.kernel.behavioursOf('door').sort()).toEqual([pid, other].sort());
    expect(k.kernel.behavioursOf('maint')).toEqual([]);

    expect(await callFromHost(k, pid, { op: 'push', module: 'maint' })).toBe('pushed');
    expect(info(k, pid)?.behaviour).toMatchObject({ module: 'maint', stack: ['door'] });
    expect(k.kernel.behavioursOf('maint')).toEqual([pid]);
    expect(k.kernel.behavioursOf('door').sort()).toEqual([pid, other].sort());
    expect(await callFromHost(k, pid, 'peek')).toMatchObject({ module: 'maint', vsn: 1, state: 'locked' });
    castFromHost(k, pid, 'oil the hinges');
    k.load('maint', maint(2));
    expect(await callFromHost(k, pid, 'peek')).toEqual({ state: 'locked', data: { code: '1234', wrong: 0, log: ['oil the hinges'] }, module: 'maint', vsn: 2 });

    expect(await callFromHost(k, pid, 'pop')).toBe('popped');
    expect(info(k, pid)?.behaviour).toMatchObject({ module: 'door', stack: [] });
    expect(await callFromHost(k, pid, 'peek')).toMatchObject({ module: 'door', vsn: 1, data: { log: ['oil the hinges'] } });
    expect(k.kernel.behavioursOf('maint')).toEqual([]);
    expect(k.kernel.behavioursOf('door').sort()).toEqual([pid, other].sort());
  });

  it('callbackModule change replaces the module; unknown modules and a pop with an empty stack kill the process', async () => {
    const { k, pid } = setupDoor();
    expect(await callFromHost(k, pid, { op: 'change', module: 'door2' })).toBe('changed');
    expect(info(k, pid)?.behaviour).toMatchObject({ module: 'door2', stack: [] });
    expect(k.kernel.behavioursOf('door')).toEqual([]);
    expect(k.kernel.behavioursOf('door2')).toEqual([pid]);
    expect(await callFromHost(k, pid, 'peek')).toMatchObject({ module: 'door', vsn: 20 });

    const lost = k.kernel.startBehaviour('statem', 'door', ['1']);
    tell(k, lost, { $call: { op: 'push', module: 'nowhere' }, from: { pid: HOST, ref: 'r-lost' } });
    await waitDead(k, lost);
    expect(errorOf(exitEvents(k, lost)[0]?.reason)).toMatchObject({ name: 'UnknownModule' });

    const popper = k.kernel.startBehaviour('statem', 'door', ['2']);
    expect(await callFromHost(k, popper, { op: 'change', module: 'maint' })).toBe('changed');
    tell(k, popper, { $call: 'pop', from: { pid: HOST, ref: 'r-pop' } });
    await waitDead(k, popper);
    expect(errorOf(exitEvents(k, popper)[0]?.reason)).toMatchObject({ name: 'TypeError', message: expect.stringMatching(/empty stack/) });
    expect(k.kernel.behavioursOf('maint')).toEqual([]);
  });

  it('changeCode on a statem converts { state, data }, for its top module or one on its stack', async () => {
    const { k, pid } = setupDoor();
    await callFromHost(k, pid, { op: 'push', module: 'maint' });
    k.kernel.suspend(pid as never);
    k.load(
      'door',
      door(
        2,
        `
      export function codeChange(oldVsn: unknown, st: any, extra: any) {
        return { state: st.state, data: { ...st.data, migrated: { oldVsn, extra } } };
      }
    `,
      ),
    );
    // door is under maint on the stack: still a callback module of this process.
    expect(k.kernel.changeCode(pid as never, 'door', undefined, 'x')).toEqual({ from: 1, to: 2 });
    expect(k.kernel.getState(pid as never)).toEqual({ state: 'locked', data: { code: '1234', wrong: 0, migrated: { oldVsn: 1, extra: 'x' } } });
    k.kernel.resume(pid as never);
    await callFromHost(k, pid, 'pop');
    expect(await callFromHost(k, pid, 'peek')).toMatchObject({ module: 'door', vsn: 2, data: { migrated: { oldVsn: 1 } } });
  });

  it('behavioursOf lists servers and statems whose stack includes the module, and forgets them when they end', async () => {
    const { k, pid } = setupDoor();
    const s1 = startKv(k);
    const s2 = startKv(k);
    expect(k.kernel.behavioursOf('kv').sort()).toEqual([s1, s2].sort());
    expect(k.kernel.behavioursOf('door')).toEqual([pid]);
    expect(k.kernel.behavioursOf('client')).toEqual([]);
    expect(k.kernel.behavioursOf('nothing')).toEqual([]);
    k.kernel.exit(s1 as never, 'kill');
    await waitDead(k, s1);
    expect(k.kernel.behavioursOf('kv')).toEqual([s2]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('behaviours on a real node', () => {
  let system: System | undefined;
  afterEach(async () => {
    await system?.stop();
    system = undefined;
  });

  it('startServer / startStatem, calls and casts from the host, the sys protocol over the wire', async () => {
    system = await System.start({ nodes: [{ name: 'n', modules: { kv: kv(1), door: door(1), maint: maint(1) } }] });
    const n = system.node('n');
    await expect(n.startServer('kv', [-1])).rejects.toBeInstanceOf(Refused);
    expect(await n.processes()).toEqual([]);
    const inbox = system.inbox();
    const pid = await n.startServer('kv', [1, inbox.pid], { name: 'kv' });
    const statem = await n.startStatem('door', ['42']);
    expect(await system.call({ name: 'kv', node: 'n' }, { op: 'add', by: 1 })).toBe(2);
    system.cast(pid, { op: 'add', by: 10 });
    expect(await system.call(pid, { op: 'get' })).toEqual({ vsn: 1, n: 12 });
    expect(await system.call(statem, { op: 'unlock', code: '42' })).toBe('opened');
    expect(await n.behavioursOf('kv')).toEqual([pid]);
    expect(await n.behavioursOf('door')).toEqual([statem]);

    await n.suspend(pid);
    const pending = system.call(pid, { op: 'get' });
    await n.load('kv', kv(2, `export function codeChange(_old: unknown, s: any) { return { ...s, n: s.n + 1000 }; }`));
    expect(await n.changeCode(pid, 'kv')).toEqual({ from: 1, to: 2 });
    await n.resume(pid);
    expect(await pending).toEqual({ vsn: 2, n: 1012 });
    await n.replaceState(pid, { n: 7, owner: inbox.pid, pending: null });
    expect(await n.getState(pid)).toEqual({ n: 7, owner: inbox.pid, pending: null });
    expect(await system.call(pid, { op: 'stop', reason: 'normal', reply: 'ok' })).toBe('ok');
    expect(await inbox.receive(has('terminate'))).toMatchObject({ terminate: 'normal', state: { n: 7, stopping: true } });
  });
});
