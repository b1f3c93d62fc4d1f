/**
 * modules() and lingering(module, version) count the behaviour processes whose callback module a
 * version is: a server of `counter` runs kernel code that calls counter's current version, so the
 * per-version process index alone missed it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { System } from '../src/index.js';

let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

const counter = (vsn: number) => `
  export const vsn = ${vsn};
  export function init() { return 0; }
  export function handleCall(req: any, from: any, n: number) { return { reply: n + 1, state: n + 1 }; }
`;

const countsOf = async (s: System, module: string) =>
  (await s.node('a').modules()).find((m) => m.name === module)?.versions.map((v) => [v.version, v.state, v.processes]);

describe('behaviour processes in module counts', () => {
  it("modules() counts servers under their callback module's current version; lingering(module, version) agrees", async () => {
    system = await System.start({ nodes: [{ name: 'a', modules: { counter: counter(1) } }] });
    const a = system.node('a');
    const one = await a.startServer('counter');
    const two = await a.startServer('counter');
    expect(await countsOf(system, 'counter')).toEqual([[1, 'current', 2]]);
    expect((await a.lingering('counter', 1)).sort()).toEqual([one, two].sort());
    expect(await a.lingering('counter')).toEqual([]); // they run no old code

    await a.load('counter', counter(2));
    expect(await countsOf(system, 'counter')).toEqual([
      [1, 'old', 0],
      [2, 'current', 2],
    ]);
    expect((await a.lingering('counter', 2)).sort()).toEqual([one, two].sort());
    expect(await a.lingering('counter')).toEqual([]);

    await a.exit(one, 'kill');
    expect(await system.call(two, 'inc')).toBe(1);
    expect(await countsOf(system, 'counter')).toEqual([
      [1, 'old', 0],
      [2, 'current', 1],
    ]);
    expect(await a.lingering('counter', 2)).toEqual([two]);
  });
});
