import { afterEach, describe, expect, it } from 'vitest';
import { System } from '../src/index.js';

const counter = (vsn: number) => `
  import { receive, on, send } from 'subnode';
  import * as counter from './counter';
  export function start(n: number) { return loop(n); }
  export function loop(n: number): unknown {
    return receive(
      on({ type: 'inc' }, () => loop(n + 1)),
      on({ type: 'get' }, (m: { from: string }) => { send(m.from, { n, vsn: ${vsn} }); return loop(n); }),
      on({ type: 'upgrade' }, () => counter.loop(n)),
    );
  }
`;

let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

describe('system smoke', () => {
  it('runs processes on two thread nodes and messages across', async () => {
    system = await System.start({ nodes: [{ name: 'a' }, { name: 'b' }] });
    await system.node('a').load('counter', counter(1));
    await system.node('b').load('counter', counter(1));
    const pa = await system.node('a').spawn('counter', 'start', [0]);
    const pb = await system.node('b').spawn('counter', 'start', [10]);
    expect(pa).toBe('<a.1>');
    const inbox = system.inbox();
    system.send(pa, { type: 'inc' });
    system.send(pa, { type: 'get', from: inbox.pid });
    expect(await inbox.receive()).toEqual({ n: 1, vsn: 1 });
    await system.node('b').load('counter', counter(2));
    system.send(pb, { type: 'upgrade' });
    system.send(pb, { type: 'get', from: inbox.pid });
    system.send(pa, { type: 'upgrade' });
    system.send(pa, { type: 'get', from: inbox.pid });
    const replies = [await inbox.receive(), await inbox.receive()];
    expect(replies).toContainEqual({ n: 10, vsn: 2 });
    expect(replies).toContainEqual({ n: 1, vsn: 1 });
    const mods = await system.node('b').modules();
    expect(mods[0]!.versions.map((v) => [v.state, v.processes])).toEqual([
      ['old', 0],
      ['current', 1],
    ]);
  });
});
