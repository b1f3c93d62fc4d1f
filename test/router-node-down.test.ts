/**
 * A host's own monitors (its mailboxes') when a node goes down: of another host's node, only the
 * incarnations the news is about fire `noconnection` (a later incarnation's pids, learned by
 * another way before a late down notice came, stay watched).
 */
import { describe, expect, it } from 'vitest';
import { Router } from '../src/host/router.js';
import { Events } from '../src/host/events.js';
import { nodeOf, type Pid } from '../src/kernel/pid.js';
import { EVERY_INCARNATION } from '../src/net/frames.js';

describe('Router.nodeDown', () => {
  it('fires noconnection for the incarnations up to the creation told, and for every one when told so', () => {
    const r = new Router(
      new Events(),
      () => {},
      (pid) => nodeOf(pid),
    );
    r.hostNode = 'host@A';
    r.addNode('b', { deliver: () => true });
    const inbox = r.inbox();
    const old = '<b.2.2>' as Pid;
    const next = '<b.1.3>' as Pid;
    const oldRef = inbox.monitor(old);
    const nextRef = inbox.monitor(next);
    r.nodeDown('b', [], () => false, 2);
    expect(inbox.drain()).toEqual([{ type: 'DOWN', ref: oldRef, pid: old, reason: 'noconnection' }]);
    r.nodeDown('b', [], () => false, EVERY_INCARNATION);
    expect(inbox.drain()).toEqual([{ type: 'DOWN', ref: nextRef, pid: next, reason: 'noconnection' }]);
    inbox.close();
  });
});
