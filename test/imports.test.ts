/**
 * A thread node's allow-list of packages and builtins (`imports`): module code imports them as
 * written; they are resolved by the host, listed in modules() as native, and cannot be loaded or
 * upgraded as modules. An isolate node gets none; a package not listed is not available.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BadArgument, LoadError, System } from '../src/index.js';

let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

const user = `
  import { join } from 'node:path';
  import { z } from 'zod';
  export function init() { return null; }
  export function handleCall(req: { path: string[]; n: unknown }, _from: unknown, s: null) {
    const parsed = z.number().int().safeParse(req.n);
    return { reply: { joined: join(...req.path), valid: parsed.success }, state: s };
  }
`;

describe('imports: packages and builtins for thread nodes', () => {
  it('module code uses a listed builtin and a listed package; modules() lists them as native', async () => {
    system = await System.start({ nodes: [{ name: 'a', imports: ['node:path', 'zod'], importsFrom: import.meta.url, modules: { user } }] });
    const pid = await system.node('a').startServer('user');
    expect(await system.call(pid, { path: ['x', 'y'], n: 3 })).toEqual({ joined: 'x/y', valid: true });
    expect(await system.call(pid, { path: ['a'], n: 1.5 })).toEqual({ joined: 'a', valid: false });
    const natives = (await system.node('a').modules()).filter((m) => m.native);
    expect(natives.map((m) => [m.name, m.versions])).toEqual([
      ['node:path', []],
      ['zod', []],
    ]);
    await expect(system.node('a').load('zod', 'export const x = 1;')).rejects.toBeInstanceOf(BadArgument);
  });

  it('a package not listed is not there; an isolate node cannot have imports; an unknown package is refused at once', async () => {
    system = await System.start({ nodes: [{ name: 'a', modules: {} }] });
    await expect(system.node('a').load('fs_user', "import { readFileSync } from 'node:fs'; export const r = readFileSync;")).rejects.toBeInstanceOf(LoadError);
    await expect(system.addNode({ name: 'i', kind: 'isolate', imports: ['node:path'] })).rejects.toThrow(/isolate node cannot import/);
    await expect(system.addNode({ name: 'b', imports: ['no-such-package-here'] })).rejects.toThrow(/cannot find the package 'no-such-package-here'/);
  });
});
