/**
 * Kernel semantics, part 2: signals. Links and exit signals (trapping, kill, normal, noproc,
 * unlink, long chains), monitors, and the signals that cross to other nodes (recorded in
 * `k.outbound`, injected with `kernel.deliver`, cut with `kernel.nodeDown`).
 */
import { describe, expect, it } from 'vitest';
import { localKernel, type LocalKernel } from './helpers/local-kernel.js';
import {
  HOST,
  info,
  envelopes,
  errorOf,
  exitEvents,
  forward,
  quiesce,
  receivedAtLeast,
  sent,
  spawnFn,
  tell,
  waitDead,
  waitFor,
  waitWaiting,
  type Api,
} from './helpers/kernel-tools.js';
import { BadArgument, NoProcess } from '../src/errors.js';
import type { Envelope } from '../src/kernel/signals.js';
import { parsePid } from '../src/kernel/pid.js';

/**
 * A process that obeys commands and reports every other message it gets as `{ at, got }`:
 * 'crash' throws, ['exit', r] exits with r, 'stop' ends normally, ['link'|'unlink', pid],
 * ['signal', pid, reason] sends exit(pid, reason), ['trap', flag] sets trapExit, ['monitor', t]
 * and ['demonitor', ref] (the ref is reported).
 */
function worker(api: Api): unknown {
  return api.receive(
    api.on('crash', () => {
      throw new Error('boom');
    }),
    api.on(['exit', api.ANY], ([, reason]: [string, unknown]) => api.exit(reason)),
    api.on('stop', () => 'stopped'),
    api.on(['link', api.ANY], ([, pid]: [string, string]) => {
      api.link(pid);
      api.send(HOST, ['linked', api.self(), pid]);
      return worker(api);
    }),
    api.on(['unlink', api.ANY], ([, pid]: [string, string]) => {
      api.unlink(pid);
      api.send(HOST, ['unlinked', api.self(), pid]);
      return worker(api);
    }),
    api.on(['signal', api.ANY, api.ANY], ([, pid, reason]: [string, string, unknown]) => {
      api.exit(pid, reason);
      api.send(HOST, ['signalled', api.self()]);
      return worker(api);
    }),
    api.on(['trap', api.ANY], ([, flag]: [string, boolean]) => {
      api.send(HOST, ['trap was', api.trapExit(flag)]);
      return worker(api);
    }),
    api.on(['monitor', api.ANY], ([, target]: [string, string]) => {
      api.send(HOST, ['monitoring', api.self(), api.monitor(target)]);
      return worker(api);
    }),
    api.on(['demonitor', api.ANY], ([, ref]: [string, string]) => {
      api.demonitor(ref);
      api.send(HOST, ['demonitored', api.self(), ref]);
      return worker(api);
    }),
    (m: unknown) => {
      api.send(HOST, { at: api.self(), got: m });
      return worker(api);
    },
  );
}

function trapper(api: Api): unknown {
  api.trapExit(true);
  return worker(api);
}

type Exit = { type: 'EXIT'; from: string; reason: unknown };
type Down = { type: 'DOWN'; ref: string; pid: string; reason: unknown };

/** What `pid` (a worker) reported receiving, in order. */
function inbox(k: LocalKernel, pid: string): unknown[] {
  return sent(k)
    .filter((m) => (m as { at?: string })?.at === pid)
    .map((m) => (m as { got: unknown }).got);
}

async function inboxAtLeast(k: LocalKernel, pid: string, n: number): Promise<unknown[]> {
  await waitFor(() => inbox(k, pid).length >= n, `${n} message(s) at ${pid}`);
  return inbox(k, pid);
}

/** Spawns a worker that monitors `pids`; `downOf` reads the reasons it was told. */
async function observe(k: LocalKernel, ...pids: string[]): Promise<string> {
  const obs = spawnFn(
    k,
    (api, targets: string[]) => {
      for (const t of targets) api.monitor(t);
      return worker(api);
    },
    pids,
  );
  await waitWaiting(k, obs);
  return obs;
}

async function downOf(k: LocalKernel, observer: string, pid: string): Promise<unknown> {
  const find = () => inbox(k, observer).find((m) => (m as Down).type === 'DOWN' && (m as Down).pid === pid) as Down | undefined;
  await waitFor(() => find() !== undefined, `DOWN for ${pid} at ${observer}`);
  return find()!.reason;
}

/** Sends a command and waits for its acknowledgement (a report whose first element is `ack`). */
async function command(k: LocalKernel, pid: string, cmd: unknown, ack: string): Promise<void> {
  const count = () => sent(k).filter((m) => Array.isArray(m) && m[0] === ack).length;
  const before = count();
  tell(k, pid, cmd);
  await waitFor(() => count() > before, `${ack} from ${pid}`);
}

const alive = (k: LocalKernel, pid: string) => info(k, pid as never) !== undefined;

// ---------------------------------------------------------------------------------------------

describe('links', () => {
  it('a crash propagates over links, with the same reason, through intermediate processes', async () => {
    const k = localKernel();
    const top = spawnFn(k, (api) => {
      api.trapExit(true);
      api.spawnLink(() => {
        const bottom = api.spawnLink(worker, api);
        api.send(HOST, ['ids', api.self(), bottom]);
        return worker(api);
      });
      return worker(api);
    });
    const [, middle, bottom] = (await receivedAtLeast(k, 1))[0] as [string, string, string];
    await waitWaiting(k, bottom);
    expect(info(k, middle)?.links.sort()).toEqual([bottom, top].sort());
    tell(k, bottom, 'crash');
    const [exit] = (await inboxAtLeast(k, top, 1)) as Exit[];
    expect(exit).toMatchObject({ type: 'EXIT', from: middle });
    expect(errorOf(exit!.reason)).toEqual({ name: 'Error', message: 'boom' });
    expect(alive(k, middle)).toBe(false);
    expect(alive(k, bottom)).toBe(false);
    expect(alive(k, top)).toBe(true);
    // Both deaths are crashes with the same reason.
    expect(exitEvents(k, middle)[0]?.reason).toEqual(exitEvents(k, bottom)[0]?.reason);
    // The dead link is gone from the survivor.
    expect(info(k, top)?.links).toEqual([]);
  });

  it('a normal exit does not kill linked processes (either direction), and removes the link', async () => {
    const k = localKernel();
    const parent = spawnFn(k, (api) => {
      const child = api.spawnLink(worker, api);
      api.send(HOST, ['child', child]);
      return worker(api);
    });
    const child = ((await receivedAtLeast(k, 1))[0] as string[])[1]!;
    await waitWaiting(k, child);
    tell(k, child, 'stop');
    await waitDead(k, child);
    await quiesce();
    expect(alive(k, parent)).toBe(true);
    expect(info(k, parent)?.links).toEqual([]);

    const child2 = spawnFn(k, worker);
    await command(k, child2, ['link', parent], 'linked');
    expect(info(k, parent)?.links).toEqual([child2]);
    tell(k, parent, ['exit', 'normal']);
    await waitDead(k, parent);
    await quiesce();
    expect(alive(k, child2)).toBe(true);
    expect(info(k, child2)?.links).toEqual([]);
    expect(inbox(k, child2)).toEqual([]);
  });

  it('trapExit turns exit signals into EXIT messages, normal ones included', async () => {
    const k = localKernel();
    const t = spawnFn(k, trapper);
    await waitWaiting(k, t);
    expect(info(k, t)?.trapExit).toBe(true);
    const a = spawnFn(k, worker);
    const b = spawnFn(k, worker);
    const c = spawnFn(k, worker);
    for (const p of [a, b, c]) await command(k, p, ['link', t], 'linked');
    tell(k, a, 'stop');
    tell(k, b, ['exit', { custom: 1 }]);
    tell(k, c, 'crash');
    const got = (await inboxAtLeast(k, t, 3)) as Exit[];
    expect(got.slice(0, 2)).toEqual([
      { type: 'EXIT', from: a, reason: 'normal' },
      { type: 'EXIT', from: b, reason: { custom: 1 } },
    ]);
    expect(got[2]).toMatchObject({ type: 'EXIT', from: c });
    expect(errorOf(got[2]!.reason)?.message).toBe('boom');
    expect(alive(k, t)).toBe(true);
    expect(info(k, t)?.links).toEqual([]);
  });

  it('trapExit(flag) returns the previous setting, and can be turned off again', async () => {
    const k = localKernel();
    const w = spawnFn(k, worker);
    await command(k, w, ['trap', true], 'trap was');
    await command(k, w, ['trap', false], 'trap was');
    expect(sent(k).filter((m) => Array.isArray(m) && m[0] === 'trap was')).toEqual([
      ['trap was', false],
      ['trap was', true],
    ]);
    expect(info(k, w)?.trapExit).toBe(false);
    const obs = await observe(k, w);
    const crasher = spawnFn(k, worker);
    await command(k, crasher, ['link', w], 'linked');
    tell(k, crasher, 'crash');
    expect(errorOf(await downOf(k, obs, w))?.message).toBe('boom');
  });

  it("exit(pid, 'kill') is untrappable, and links and monitors see 'killed'", async () => {
    const k = localKernel();
    const target = spawnFn(k, trapper);
    const friend = spawnFn(k, trapper);
    await waitWaiting(k, target);
    await command(k, friend, ['link', target], 'linked');
    const obs = await observe(k, target);
    const killer = spawnFn(k, worker);
    await command(k, killer, ['signal', target, 'kill'], 'signalled');
    expect(await downOf(k, obs, target)).toBe('killed');
    expect(await inboxAtLeast(k, friend, 1)).toEqual([{ type: 'EXIT', from: target, reason: 'killed' }]);
    // The target never saw a message about it.
    expect(inbox(k, target)).toEqual([]);
    // 'killed' is a quiet reason.
    expect(exitEvents(k, target)).toEqual([]);
  });

  it("a process that exits with reason 'kill' sends a trappable 'kill' over its links", async () => {
    const k = localKernel();
    const dying = spawnFn(k, worker);
    const trapping = spawnFn(k, trapper);
    const plain = spawnFn(k, worker);
    await waitWaiting(k, dying);
    await command(k, trapping, ['link', dying], 'linked');
    await command(k, plain, ['link', dying], 'linked');
    const obs = await observe(k, dying, plain);
    tell(k, dying, ['exit', 'kill']);
    expect(await downOf(k, obs, dying)).toBe('kill');
    expect(await inboxAtLeast(k, trapping, 1)).toEqual([{ type: 'EXIT', from: dying, reason: 'kill' }]);
    expect(alive(k, trapping)).toBe(true);
    expect(await downOf(k, obs, plain)).toBe('kill');
  });

  it("exit(pid, 'normal') is ignored by a process that does not trap exits; a trapping one gets EXIT", async () => {
    const k = localKernel();
    const plain = spawnFn(k, worker);
    const trapping = spawnFn(k, trapper);
    const sender = spawnFn(k, worker);
    await waitWaiting(k, plain);
    await waitWaiting(k, trapping);
    await command(k, sender, ['signal', plain, 'normal'], 'signalled');
    await command(k, sender, ['signal', trapping, 'normal'], 'signalled');
    await quiesce();
    expect(alive(k, plain)).toBe(true);
    expect(inbox(k, plain)).toEqual([]);
    expect(await inboxAtLeast(k, trapping, 1)).toEqual([{ type: 'EXIT', from: sender, reason: 'normal' }]);
    // From the host too.
    k.kernel.exit(plain as never, 'normal');
    await quiesce();
    expect(alive(k, plain)).toBe(true);
  });

  it("exit(self(), 'normal') ends the process normally", async () => {
    const k = localKernel();
    const obs = spawnFn(k, (api) => {
      api.spawnMonitor(() => {
        api.exit(api.self(), 'normal');
        return api.receive(() => 0);
      });
      return worker(api);
    });
    const [down] = (await inboxAtLeast(k, obs, 1)) as Down[];
    expect(down).toMatchObject({ type: 'DOWN', reason: 'normal' });
  });

  it('exit(pid, reason) with any other reason kills a non-trapping process with that reason', async () => {
    const k = localKernel();
    const victim = spawnFn(k, worker);
    const linked = spawnFn(k, trapper);
    await waitWaiting(k, victim);
    await command(k, linked, ['link', victim], 'linked');
    const obs = await observe(k, victim);
    const sender = spawnFn(k, worker);
    await command(k, sender, ['signal', victim, { shutdown: 'bye' }], 'signalled');
    expect(await downOf(k, obs, victim)).toEqual({ shutdown: 'bye' });
    expect(await inboxAtLeast(k, linked, 1)).toEqual([{ type: 'EXIT', from: victim, reason: { shutdown: 'bye' } }]);
    // The sender is not linked and is not affected.
    expect(alive(k, sender)).toBe(true);
  });

  it('kernel.exit (from the host) kills, reaches trapping processes as EXIT, and throws NoProcess for a dead pid', async () => {
    const k = localKernel();
    const plain = spawnFn(k, worker);
    const trapping = spawnFn(k, trapper);
    await waitWaiting(k, plain);
    await waitWaiting(k, trapping);
    const obs = await observe(k, plain);
    k.kernel.exit(plain as never, 'boom');
    expect(await downOf(k, obs, plain)).toBe('boom');
    k.kernel.exit(trapping as never, 'boom');
    const [exit] = (await inboxAtLeast(k, trapping, 1)) as Exit[];
    expect(exit).toMatchObject({ type: 'EXIT', reason: 'boom' });
    expect(exit!.from).toMatch(/^<host\./);
    k.kernel.exit(trapping as never, 'kill');
    await waitDead(k, trapping);
    expect(() => k.kernel.exit(plain as never, 'again')).toThrow(NoProcess);
  });

  it("linking to a dead pid: EXIT with reason 'noproc' when trapping, death by 'noproc' otherwise", async () => {
    const k = localKernel();
    const dead = spawnFn(k, () => 'gone');
    await waitDead(k, dead);
    const trapping = spawnFn(k, trapper);
    await command(k, trapping, ['link', dead], 'linked');
    expect(await inboxAtLeast(k, trapping, 1)).toEqual([{ type: 'EXIT', from: dead, reason: 'noproc' }]);
    expect(info(k, trapping)?.links).toEqual([]);

    const plain = spawnFn(k, worker);
    const obs = await observe(k, plain);
    tell(k, plain, ['link', dead]);
    expect(await downOf(k, obs, plain)).toBe('noproc');
  });

  it('unlink stops propagation, in both directions, and removes both ends', async () => {
    const k = localKernel();
    const a = spawnFn(k, worker);
    const b = spawnFn(k, worker);
    const c = spawnFn(k, worker);
    await waitWaiting(k, a);
    await command(k, b, ['link', a], 'linked');
    await command(k, c, ['link', a], 'linked');
    expect(info(k, a)?.links.sort()).toEqual([b, c].sort());
    await command(k, b, ['unlink', a], 'unlinked'); // b unlinks a
    await command(k, a, ['unlink', c], 'unlinked'); // a unlinks c
    expect(info(k, a)?.links).toEqual([]);
    expect(info(k, b)?.links).toEqual([]);
    expect(info(k, c)?.links).toEqual([]);
    tell(k, a, 'crash');
    await waitDead(k, a);
    await quiesce();
    expect(alive(k, b)).toBe(true);
    expect(alive(k, c)).toBe(true);
    // Unlinking something not linked is a no-op.
    await command(k, b, ['unlink', c], 'unlinked');
    expect(alive(k, b)).toBe(true);
  });

  it('link is idempotent, link(self()) is a no-op, and link() of a non-pid is BadArgument', async () => {
    const k = localKernel();
    const other = spawnFn(k, worker);
    spawnFn(
      k,
      (api, pid: string) => {
        api.link(pid);
        api.link(pid);
        api.link(api.self());
        let bad = 'none';
        try {
          api.link('not a pid');
        } catch (e) {
          bad = (e as Error).name;
          if (!(e instanceof BadArgument)) bad += '?';
        }
        api.send(HOST, ['done', bad]);
        return worker(api);
      },
      other,
    );
    expect(await receivedAtLeast(k, 1)).toEqual([['done', 'BadArgument']]);
    const me = k.kernel.processes().find((p) => p.pid !== other)!;
    expect(me.links).toEqual([other]);
    expect(info(k, other)?.links).toEqual([me.pid]);
  });

  it('a crashing parent takes its spawnLink-ed children down; spawnOpt({link, trapExit}) works', async () => {
    const k = localKernel();
    const parent = spawnFn(k, (api) => {
      const plainChild = api.spawnLink(worker, api);
      const trappingChild = api.spawnOpt(worker, [api], { link: true, trapExit: true });
      api.send(HOST, ['children', plainChild, trappingChild]);
      return worker(api);
    });
    const [, plainChild, trappingChild] = (await receivedAtLeast(k, 1))[0] as string[];
    await waitWaiting(k, trappingChild!);
    expect(info(k, trappingChild!)).toMatchObject({ trapExit: true, links: [parent] });
    const obs = await observe(k, plainChild!);
    tell(k, parent, 'crash');
    expect(errorOf(await downOf(k, obs, plainChild!))?.message).toBe('boom');
    const [exit] = (await inboxAtLeast(k, trappingChild!, 1)) as Exit[];
    expect(exit).toMatchObject({ type: 'EXIT', from: parent });
    expect(alive(k, trappingChild!)).toBe(true);
  });

  it('messages a process sent before it died arrive before its EXIT', async () => {
    const k = localKernel();
    const t = spawnFn(k, (api) => {
      api.trapExit(true);
      api.spawnLink((to: string) => {
        for (let i = 0; i < 5; i++) api.send(to, i);
        throw new Error('after sending');
      }, api.self());
      return worker(api);
    });
    const got = await inboxAtLeast(k, t, 6);
    expect(got.slice(0, 5)).toEqual([0, 1, 2, 3, 4]);
    expect(got[5]).toMatchObject({ type: 'EXIT' });
  });

  it('a chain of 20,000 linked processes dies without a stack overflow', async () => {
    const k = localKernel();
    const LENGTH = 20_000;
    const top = spawnFn(k, (api) => {
      api.trapExit(true);
      const link = (n: number): unknown => {
        if (n > 1) api.spawnLink(link, n - 1);
        else api.send(HOST, ['tail', api.self()]);
        return api.receive(
          api.on('crash', () => {
            throw new Error(`tail crashed`);
          }),
        );
      };
      api.spawnLink(link, LENGTH);
      return worker(api);
    });
    const [, tail] = (await receivedAtLeast(k, 1, HOST, 15_000))[0] as [string, string];
    await waitWaiting(k, tail);
    expect(k.kernel.processCount).toBe(LENGTH + 1);
    tell(k, tail, 'crash');
    const [exit] = (await inboxAtLeast(k, top, 1)) as Exit[];
    expect(exit).toMatchObject({ type: 'EXIT', from: '<a.2>' });
    expect(errorOf(exit!.reason)).toEqual({ name: 'Error', message: 'tail crashed' });
    expect(k.kernel.processCount).toBe(1);
    expect(exitEvents(k)).toHaveLength(LENGTH);
    expect(exitEvents(k).every((e) => errorOf(e.reason)?.message === 'tail crashed')).toBe(true);
  });

  it('a chain of 20,000 linked processes killed from the top dies too', async () => {
    const k = localKernel();
    const LENGTH = 20_000;
    const head = spawnFn(k, (api) => {
      const link = (n: number): unknown => {
        if (n > 1) api.spawnLink(link, n - 1);
        else api.send(HOST, 'built');
        return api.receive(() => 0);
      };
      return link(LENGTH);
    });
    await receivedAtLeast(k, 1, HOST, 15_000);
    expect(k.kernel.processCount).toBe(LENGTH);
    k.kernel.exit(head as never, 'kill');
    await waitFor(() => k.kernel.processCount === 0, 'the chain to die');
    // The head was killed; every other process got 'killed' over its link.
    expect(exitEvents(k)).toEqual([]);
  });

  it('an exit signal that reaches a process while it runs takes effect when its step ends', async () => {
    const k = localKernel();
    const obs = spawnFn(k, (api) => {
      api.trapExit(true);
      const a = api.spawn(() => {
        const b = api.spawnLink(() => api.receive(() => 0));
        api.send(HOST, 'a started b');
        return api.receive(
          api.on('go', () => {
            api.exit(b, 'boom'); // b dies at once; its link exit reaches a, which is running
            api.send(HOST, 'rest of the step runs');
            return api.receive(() => 0);
          }),
        );
      });
      api.monitor(a);
      api.send(HOST, ['a', a]);
      return worker(api);
    });
    const a = ((await receivedAtLeast(k, 2)).find((m) => Array.isArray(m)) as string[])[1]!;
    await waitWaiting(k, a);
    tell(k, a, 'go');
    const [down] = (await inboxAtLeast(k, obs, 1)) as Down[];
    expect(down).toMatchObject({ type: 'DOWN', pid: a, reason: 'boom' });
    expect(alive(k, a)).toBe(false);
  });

  it("exit(self(), 'kill') kills the process with 'killed', even if the step then throws", async () => {
    // Erlang: `exit(self(), kill)` does not return; the process is killed and its links get
    // `killed`. Here the kill is held until the step returns, and a later throw replaces it.
    const k = localKernel();
    const obs = spawnFn(k, (api) => {
      api.trapExit(true);
      api.spawnLink(() => {
        api.exit(api.self(), 'kill');
        throw new Error('after kill');
      });
      return worker(api);
    });
    const [exit] = (await inboxAtLeast(k, obs, 1)) as Exit[];
    expect(exit!.reason).toBe('killed');
  });
});

// ---------------------------------------------------------------------------------------------

describe('monitors', () => {
  it('DOWN carries the reason: crash, normal, custom, killed', async () => {
    const k = localKernel();
    const [crash, normal, custom, killed] = [1, 2, 3, 4].map(() => spawnFn(k, worker));
    const obs = await observe(k, crash!, normal!, custom!, killed!);
    const refs = inbox(k, obs) as Down[];
    expect(refs).toEqual([]);
    tell(k, crash!, 'crash');
    tell(k, normal!, 'stop');
    tell(k, custom!, ['exit', ['my', 'reason']]);
    k.kernel.exit(killed! as never, 'kill');
    expect(errorOf(await downOf(k, obs, crash!))).toEqual({ name: 'Error', message: 'boom' });
    expect(await downOf(k, obs, normal!)).toBe('normal');
    expect(await downOf(k, obs, custom!)).toEqual(['my', 'reason']);
    expect(await downOf(k, obs, killed!)).toBe('killed');
    // Monitors are one-way: the watcher lives on.
    expect(alive(k, obs)).toBe(true);
  });

  it('DOWN messages have { type, ref, pid, reason } with the ref monitor() returned', async () => {
    const k = localKernel();
    const target = spawnFn(k, worker);
    const w = spawnFn(k, worker);
    await command(k, w, ['monitor', target], 'monitoring');
    const ref = (sent(k).find((m) => Array.isArray(m) && m[0] === 'monitoring') as string[])[2]!;
    // #Ref<node.creation.block.random.i>: unique by block and i, unguessable by the random part.
    expect(ref).toMatch(/^#Ref<a\.0\.\d+\.[a-z0-9]+\.\d+>$/);
    tell(k, target, 'stop');
    expect(await inboxAtLeast(k, w, 1)).toEqual([{ type: 'DOWN', ref, pid: target, reason: 'normal' }]);
  });

  it("monitoring a dead pid or an unregistered name gives DOWN 'noproc' at once", async () => {
    const k = localKernel();
    const dead = spawnFn(k, () => 'gone');
    await waitDead(k, dead);
    const w = spawnFn(
      k,
      (api, d: string) => {
        const r1 = api.monitor(d);
        const r2 = api.monitor('nobody');
        api.send(HOST, ['refs', r1, r2]);
        return worker(api);
      },
      dead,
    );
    const [, r1, r2] = (await receivedAtLeast(k, 1))[0] as string[];
    expect(await inboxAtLeast(k, w, 2)).toEqual([
      { type: 'DOWN', ref: r1, pid: dead, reason: 'noproc' },
      { type: 'DOWN', ref: r2, pid: 'nobody', reason: 'noproc' },
    ]);
    expect(alive(k, w)).toBe(true);
  });

  it('monitors a registered name (DOWN names the pid)', async () => {
    const k = localKernel();
    const srv = spawnFn(k, (api) => {
      api.register('srv');
      return worker(api);
    });
    await waitWaiting(k, srv);
    const obs = await observe(k, 'srv');
    tell(k, 'srv', 'crash');
    expect(errorOf(await downOf(k, obs, srv))?.message).toBe('boom');
  });

  it('demonitor suppresses the DOWN', async () => {
    const k = localKernel();
    const target = spawnFn(k, worker);
    const w = spawnFn(k, worker);
    await command(k, w, ['monitor', target], 'monitoring');
    const ref = (sent(k).find((m) => Array.isArray(m) && m[0] === 'monitoring') as string[])[2]!;
    await command(k, w, ['demonitor', ref], 'demonitored');
    tell(k, target, 'crash');
    await waitDead(k, target);
    tell(k, w, 'marker');
    expect(await inboxAtLeast(k, w, 1)).toEqual(['marker']);
    await quiesce();
    expect(inbox(k, w)).toEqual(['marker']);
    expect(info(k, w)?.mailbox).toBe(0);
  });

  it('demonitor of an unknown or already removed ref is a harmless no-op returning true', async () => {
    const k = localKernel();
    spawnFn(k, (api) => {
      const [pid, ref] = api.spawnMonitor(() => api.receive(() => 0));
      const results = [api.demonitor(ref), api.demonitor(ref), api.demonitor('#Ref<a.0.999>')];
      api.exit(pid, 'kill');
      return api.receive(
        (m: unknown) => {
          api.send(HOST, ['got', m, results]);
        },
        api.after(30, () => {
          api.send(HOST, ['nothing', results]);
        }),
      );
    });
    expect(await receivedAtLeast(k, 1)).toEqual([['nothing', [true, true, true]]]);
  });

  it('two monitors give two DOWNs with distinct refs', async () => {
    const k = localKernel();
    const target = spawnFn(k, worker);
    const w = spawnFn(k, worker);
    await command(k, w, ['monitor', target], 'monitoring');
    await command(k, w, ['monitor', target], 'monitoring');
    const refs = sent(k)
      .filter((m) => Array.isArray(m) && m[0] === 'monitoring')
      .map((m) => (m as string[])[2]);
    expect(new Set(refs).size).toBe(2);
    tell(k, target, 'stop');
    const downs = (await inboxAtLeast(k, w, 2)) as Down[];
    expect(downs.map((d) => d.ref).sort()).toEqual([...refs].sort());
    expect(downs.every((d) => d.pid === target && d.reason === 'normal')).toBe(true);
  });

  it('spawnMonitor returns [pid, ref]; spawnOpt({ monitor: true }) too', async () => {
    const k = localKernel();
    const w = spawnFn(k, (api) => {
      const [p1, r1] = api.spawnMonitor(() => {
        throw new Error('early');
      });
      const [p2, r2] = api.spawnOpt(() => 'fine', [], { monitor: true }) as [string, string];
      api.send(HOST, { p1, r1, p2, r2 });
      return worker(api);
    });
    const [ids] = (await receivedAtLeast(k, 1)) as { p1: string; r1: string; p2: string; r2: string }[];
    const downs = (await inboxAtLeast(k, w, 2)) as Down[];
    expect(downs.find((d) => d.ref === ids!.r1)).toMatchObject({ pid: ids!.p1 });
    expect(errorOf(downs.find((d) => d.ref === ids!.r1)!.reason)?.message).toBe('early');
    expect(downs.find((d) => d.ref === ids!.r2)).toEqual({ type: 'DOWN', ref: ids!.r2, pid: ids!.p2, reason: 'normal' });
    // Monitors do not link.
    expect(info(k, w)?.links).toEqual([]);
  });

  it('a watcher that dies does not affect the watched process', async () => {
    const k = localKernel();
    const target = spawnFn(k, worker);
    const w = spawnFn(k, worker);
    await command(k, w, ['monitor', target], 'monitoring');
    tell(k, w, 'crash');
    await waitDead(k, w);
    await quiesce();
    expect(alive(k, target)).toBe(true);
    tell(k, target, 'stop');
    await waitDead(k, target);
  });
});

// ---------------------------------------------------------------------------------------------

describe('signals to and from other nodes', () => {
  const REMOTE = '<b.7>';
  const deliver = (k: LocalKernel, ...e: unknown[][]) => k.kernel.deliver(e as unknown as Envelope[]);

  it('link/monitor of a remote pid send Link/Monitor signals; nodeDown gives noconnection', async () => {
    const k = localKernel('a');
    const trapping = spawnFn(k, trapper);
    const plain = spawnFn(k, worker);
    const watcher = spawnFn(k, worker);
    await command(k, trapping, ['link', REMOTE], 'linked');
    await command(k, plain, ['link', REMOTE], 'linked');
    await command(k, watcher, ['monitor', REMOTE], 'monitoring');
    const ref = (sent(k).find((m) => Array.isArray(m) && m[0] === 'monitoring') as string[])[2]!;
    await waitFor(() => envelopes(k).filter((e) => e[1] === REMOTE).length === 3, 'signals to b');
    const toB = k.outbound.filter((o) => o.node === 'b').flatMap((o) => o.envelopes);
    expect(toB).toEqual([
      [1, REMOTE, trapping],
      [1, REMOTE, plain],
      [4, REMOTE, watcher, ref],
    ]);
    const obs = await observe(k, plain);

    k.kernel.nodeDown('c'); // another node: nothing happens
    // Only incarnations before REMOTE's went down (its node restarted, and this news came late): nothing either.
    k.kernel.nodeDown('b', [], [], parsePid(REMOTE)!.creation - 1);
    await quiesce();
    expect(alive(k, plain)).toBe(true);
    expect(info(k, trapping)?.links).toEqual([REMOTE]);

    k.kernel.nodeDown('b');
    expect(await inboxAtLeast(k, trapping, 1)).toEqual([{ type: 'EXIT', from: REMOTE, reason: 'noconnection' }]);
    expect(await inboxAtLeast(k, watcher, 1)).toEqual([{ type: 'DOWN', ref, pid: REMOTE, reason: 'noconnection' }]);
    expect(await downOf(k, obs, plain)).toBe('noconnection');
    expect(info(k, trapping)?.links).toEqual([]);
  });

  it('a local death is signalled to remote links and remote monitors', async () => {
    const k = localKernel('a');
    const w = spawnFn(k, worker);
    await waitWaiting(k, w);
    deliver(k, [1, w, REMOTE], [4, w, '<b.8>', '#Ref<b.0.1>']);
    expect(info(k, w)?.links).toEqual([REMOTE]);
    tell(k, w, ['exit', 'bye']);
    await waitFor(() => k.outbound.some((o) => o.node === 'b'), 'signals to b');
    const toB = k.outbound.filter((o) => o.node === 'b').flatMap((o) => o.envelopes);
    expect(toB).toEqual([
      [3, REMOTE, w, 'bye', 1],
      [6, '<b.8>', w, '#Ref<b.0.1>', 'bye'],
    ]);
  });

  it('a remote Link or Monitor of a dead local pid is answered with noproc', async () => {
    const k = localKernel('a');
    const dead = spawnFn(k, () => 'gone');
    await waitDead(k, dead);
    deliver(k, [1, dead, REMOTE], [4, dead, REMOTE, '#Ref<b.0.5>'], [4, 'unknown_name', REMOTE, '#Ref<b.0.6>']);
    await waitFor(() => k.outbound.some((o) => o.node === 'b'), 'answers to b');
    const toB = k.outbound.filter((o) => o.node === 'b').flatMap((o) => o.envelopes);
    expect(toB).toEqual([
      [3, REMOTE, dead, 'noproc', 1],
      [6, REMOTE, dead, '#Ref<b.0.5>', 'noproc'],
      [6, REMOTE, 'unknown_name', '#Ref<b.0.6>', 'noproc'],
    ]);
  });

  it('remote exit signals: exit(pid, r) kills; a link exit counts only while the link exists', async () => {
    const k = localKernel('a');
    const a = spawnFn(k, worker);
    const b = spawnFn(k, worker);
    const c = spawnFn(k, trapper);
    await waitWaiting(k, c);
    const obs = await observe(k, a, b);
    deliver(k, [3, a, REMOTE, 'remote says die', 0]);
    expect(await downOf(k, obs, a)).toBe('remote says die');
    // Not linked to REMOTE: a link exit from it is ignored (stale signal).
    deliver(k, [3, b, REMOTE, 'stale', 1], [3, c, REMOTE, 'stale', 1]);
    await quiesce();
    expect(alive(k, b)).toBe(true);
    expect(inbox(k, c)).toEqual([]);
    // Linked: it counts.
    deliver(k, [1, b, REMOTE], [3, b, REMOTE, 'linked crash', 1]);
    expect(await downOf(k, obs, b)).toBe('linked crash');
  });

  it('a remote DOWN for a monitor the process holds is delivered; an unknown ref is dropped', async () => {
    const k = localKernel('a');
    const w = spawnFn(k, worker);
    await command(k, w, ['monitor', REMOTE], 'monitoring');
    const ref = (sent(k).find((m) => Array.isArray(m) && m[0] === 'monitoring') as string[])[2]!;
    deliver(k, [6, w, REMOTE, '#Ref<a.0.999>', 'unknown'], [6, w, REMOTE, ref, 'remote crash'], [6, w, REMOTE, ref, 'duplicate']);
    await quiesce();
    expect(inbox(k, w)).toEqual([{ type: 'DOWN', ref, pid: REMOTE, reason: 'remote crash' }]);
  });

  it('nodeDown forgets remote monitors on local processes', async () => {
    const k = localKernel('a');
    const w = spawnFn(k, worker);
    await waitWaiting(k, w);
    deliver(k, [4, w, REMOTE, '#Ref<b.0.1>']);
    k.kernel.nodeDown('b');
    tell(k, w, 'crash');
    await waitDead(k, w);
    await quiesce();
    expect(k.outbound.filter((o) => o.node === 'b')).toEqual([]);
  });

  it('messages between two kernels, bridged by hand, keep their order', async () => {
    const ka = localKernel('a');
    const kb = localKernel('b');
    const sink = spawnFn(kb, forward);
    spawnFn(
      ka,
      (api, to: string) => {
        for (let i = 0; i < 100; i++) api.send(to, { i, from: api.node() });
      },
      sink,
    );
    await waitFor(() => ka.outbound.some((o) => o.node === 'b'), 'a to send to b');
    for (const o of ka.outbound.filter((x) => x.node === 'b')) kb.kernel.deliver(o.envelopes);
    const got = await receivedAtLeast(kb, 100);
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => ({ i, from: 'a' })));
  });
});
