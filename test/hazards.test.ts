/**
 * Load-time hazard warnings (src/host/hazards.ts): process loops that can never leave the version
 * they run in. Pure source analysis, plus one load through a real node.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { findHazards, System, type Hazard } from '../src/index.js';

const kinds = (hazards: Hazard[]) => hazards.map((h) => h.kind);
const of = (hazards: Hazard[], kind: Hazard['kind']) => hazards.filter((h) => h.kind === kind);

/** A loop with only local continuations, but a timeout on its receive. */
const localLoop = `
import { receive, on, after, send } from 'subnode';
export function loop(n: number): unknown {
  return receive(
    on('inc', () => loop(n + 1)),
    on('get', (m: any) => { send(m.from, n); return loop(n); }),
    after(1000, () => loop(n)),
  );
}
`;

describe('no_qualified_continuation', () => {
  it('a loop that only continues by local calls is reported, at its function and line', () => {
    const hazards = findHazards(localLoop, 'looper.ts');
    expect(kinds(hazards)).toEqual(['no_qualified_continuation']);
    expect(hazards[0]).toMatchObject({ function: 'loop', line: 3 });
    expect(hazards[0]!.message).toContain("import * as self from './looper'");
    expect(hazards[0]!.message).toContain('self.loop(');
  });

  it('a loop through next(loop, …) with a local function is still local', () => {
    const src = `
      import { receive, on, after, next } from 'subnode';
      export function loop(n: number): unknown {
        return receive(on('tick', () => next(loop, n + 1)), after(50, () => next(loop, n)));
      }
    `;
    expect(kinds(findHazards(src))).toEqual(['no_qualified_continuation']);
  });

  it('a qualified continuation on one path (namespace import of itself) clears it', () => {
    const src = `
      import { receive, on, after } from 'subnode';
      import * as self from './looper';
      export function loop(n: number): unknown {
        return receive(
          on('inc', () => loop(n + 1)),
          on('upgrade', () => self.loop(n)),
          after(1000, () => loop(n)),
        );
      }
    `;
    expect(findHazards(src, 'looper.ts')).toEqual([]);
  });

  it('next(self.loop, …) counts as a qualified continuation', () => {
    const src = `
      import { receive, on, after, next } from 'subnode';
      import * as self from './looper';
      export function loop(n: number): unknown {
        return receive(on('inc', () => loop(n + 1)), on('upgrade', () => next(self.loop, n)), after(1000, () => loop(n)));
      }
    `;
    expect(findHazards(src, 'looper.ts')).toEqual([]);
  });

  it('a qualified continuation in a return statement, a conditional or another function of the cycle counts', () => {
    const inReturn = `
      import { receive, on, after } from 'subnode';
      import * as self from './looper';
      export function loop(n: number): unknown {
        return receive(on('x', () => { if (n > 10) { return self.loop(0); } return loop(n + 1); }), after(10, () => loop(n)));
      }
    `;
    const inConditional = `
      import { receive, on, after } from 'subnode';
      import * as self from './looper';
      export function loop(n: number): unknown {
        return receive(on('x', () => (n > 10 ? self.loop(0) : loop(n + 1))), after(10, () => loop(n)));
      }
    `;
    const mutual = `
      import { receive, on, after } from 'subnode';
      import * as self from './pair';
      export function ping(n: number): unknown { return receive(on('x', () => pong(n)), after(10, () => pong(n))); }
      export function pong(n: number): unknown { return n > 3 ? self.ping(0) : ping(n + 1); }
    `;
    const namedImport = `
      import { receive, on, after } from 'subnode';
      import { restart } from './other';
      export function loop(n: number): unknown { return receive(on('x', () => loop(n + 1)), on('y', () => restart(n)), after(10, () => loop(n))); }
    `;
    expect(findHazards(inReturn)).toEqual([]);
    expect(findHazards(inConditional)).toEqual([]);
    expect(findHazards(mutual)).toEqual([]);
    expect(findHazards(namedImport)).toEqual([]);
  });

  it('a helper call into another module that is not in tail position does not count', () => {
    const statement = `
      import { receive, on, after } from 'subnode';
      import * as log from './log';
      export function loop(n: number): unknown {
        return receive(on('x', () => { log.info(n); return loop(n + 1); }), after(10, () => loop(n)));
      }
    `;
    const assigned = `
      import { receive, on, after } from 'subnode';
      import * as math from './math';
      export function loop(n: number): unknown {
        return receive(on('x', () => { const next = math.inc(n); return loop(next); }), after(10, () => loop(n)));
      }
    `;
    const asArgument = `
      import { receive, on, after } from 'subnode';
      import * as math from './math';
      export function loop(n: number): unknown {
        return receive(on('x', () => loop(math.inc(n))), after(10, () => loop(n)));
      }
    `;
    for (const src of [statement, assigned, asArgument]) {
      const hazards = findHazards(src);
      expect(kinds(hazards)).toEqual(['no_qualified_continuation']);
      expect(hazards[0]!.function).toBe('loop');
    }
  });

  it('a cycle of two functions is named as one loop', () => {
    const src = `
      import { receive, on, after } from 'subnode';
      export function waiting(n: number): unknown { return receive(on('x', () => working(n)), after(10, () => waiting(n))); }
      function working(n: number): unknown { return waiting(n + 1); }
    `;
    const hazards = findHazards(src);
    expect(kinds(hazards)).toEqual(['no_qualified_continuation']);
    expect(hazards[0]!.function).toBe('waiting');
    expect(hazards[0]!.message).toMatch(/waiting\(\) → working\(\)|working\(\) → waiting\(\)/);
  });

  it('also finds the loop when the API is imported as a namespace (sn.receive)', () => {
    const src = `
      import * as sn from 'subnode';
      export function loop(n: number): unknown {
        return sn.receive(sn.on('inc', () => loop(n + 1)), sn.after(1000, () => loop(n)));
      }
    `;
    expect(kinds(findHazards(src))).toEqual(['no_qualified_continuation']);
  });

  it('finds it when receive is named only through escapes (the shortcut for bodies that never name receive skips nothing)', () => {
    const viaString = `
      import * as sn from 'subnode';
      export function loop(n: number): unknown { return sn['\\x72eceive'](sn.on('x', () => loop(n + 1)), sn.after(9, () => loop(n))); }
    `;
    const viaIdentifier = `
      import * as sn from 'subnode';
      export function loop(n: number): unknown { return sn.\\u0072eceive(sn.on('x', () => loop(n + 1)), sn.after(9, () => loop(n))); }
    `;
    for (const src of [viaString, viaIdentifier]) {
      expect(src).not.toContain('receive');
      expect(kinds(findHazards(src))).toEqual(['no_qualified_continuation']);
    }
  });
});

describe('receive_without_timeout', () => {
  it('a receive with no after() in a loop is reported at the receive; with after() it is not', () => {
    const without = `
      import { receive, on } from 'subnode';
      import * as self from './m';
      export function loop(n: number): unknown {
        return receive(
          on('inc', () => loop(n + 1)),
          on('upgrade', () => self.loop(n)),
        );
      }
    `;
    const hazards = findHazards(without, 'm.ts');
    expect(kinds(hazards)).toEqual(['receive_without_timeout']);
    expect(hazards[0]).toMatchObject({ function: 'loop', line: 5 });

    const withAfter = without
      .replace("on('upgrade', () => self.loop(n)),", "on('upgrade', () => self.loop(n)), after(5000, () => self.loop(n)),")
      .replace('{ receive, on }', '{ receive, on, after }');
    expect(findHazards(withAfter, 'm.ts')).toEqual([]);
  });

  it('with a local-only loop, both hazards are reported; renamed imports are followed', () => {
    const src = `
      import { receive as rcv, on, after as timeout } from 'subnode';
      export function loop(n: number): unknown {
        return rcv(on('inc', () => loop(n + 1)));
      }
      export function other(n: number): unknown {
        return rcv(on('inc', () => other(n + 1)), timeout(10, () => other(n)));
      }
    `;
    const hazards = findHazards(src);
    expect(
      of(hazards, 'no_qualified_continuation')
        .map((h) => h.function)
        .sort(),
    ).toEqual(['loop', 'other']);
    expect(of(hazards, 'receive_without_timeout').map((h) => h.function)).toEqual(['loop']);
  });
});

describe('local_call_in_catch', () => {
  it('a catch block that calls the loop locally is reported, even when the normal path is qualified', () => {
    const src = `
      import { receive, on, after } from 'subnode';
      import * as self from './worker';
      import * as jobs from './jobs';
      export function loop(n: number): unknown {
        return receive(
          on('job', (m: any) => {
            try {
              jobs.run(m);
              return self.loop(n + 1);
            } catch {
              return loop(n);
            }
          }),
          after(1000, () => self.loop(n)),
        );
      }
    `;
    const hazards = findHazards(src, 'worker.ts');
    expect(kinds(hazards)).toEqual(['local_call_in_catch']);
    expect(hazards[0]).toMatchObject({ function: 'loop', line: 5 });
    expect(hazards[0]!.message).toContain('loop');
  });

  it('a catch block that continues through the namespace is fine', () => {
    const src = `
      import { receive, on, after } from 'subnode';
      import * as self from './worker';
      export function loop(n: number): unknown {
        return receive(on('job', () => { try { return self.loop(n + 1); } catch { return self.loop(n); } }), after(10, () => self.loop(n)));
      }
    `;
    expect(findHazards(src, 'worker.ts')).toEqual([]);
  });
});

describe('functions that are not loops', () => {
  it('produce nothing: one-shot receives, recursion without receive, helpers', () => {
    const src = `
      import { receive, on, send } from 'subnode';
      import * as lib from './lib';
      export function once(): unknown { return receive(on('go', () => 'done')); }
      export function waitThen(tag: string): unknown { return receive(on(tag, () => lib.next())); }
      export function fact(n: number): number { return n <= 1 ? 1 : n * fact(n - 1); }
      export const helper = (x: number) => x + 1;
      export function main() { send('x', helper(fact(3))); return once(); }
    `;
    expect(findHazards(src)).toEqual([]);
    expect(findHazards('')).toEqual([]);
    expect(findHazards('export const x = 1;')).toEqual([]);
  });

  it('arrow-function loops are analysed like declarations', () => {
    const src = `
      import { receive, on } from 'subnode';
      export const loop = (n: number): unknown => receive(on('x', () => loop(n + 1)));
    `;
    expect(kinds(findHazards(src)).sort()).toEqual(['no_qualified_continuation', 'receive_without_timeout']);
  });
});

// ---------------------------------------------------------------------------------------------

describe('load through a real node', () => {
  let system: System | undefined;
  afterEach(async () => {
    await system?.stop();
    system = undefined;
  });

  it('returns the hazards in warnings, and still loads the module', async () => {
    system = await System.start({ nodes: [{ name: 'n' }] });
    const n = system.node('n');
    const src = `
      import { receive, on, send } from 'subnode';
      export function loop(n: number): unknown {
        return receive(
          on((m: any) => typeof m === 'object' && m !== null, (m: any) => { send(m.from, n); return loop(n); }),
          on('job', () => { try { return loop(n + 1); } catch { return loop(n); } }),
        );
      }
    `;
    const report = await n.load('stuck', src);
    expect(report).toMatchObject({ module: 'stuck', version: 1 });
    expect(kinds(report.warnings!).sort()).toEqual(['local_call_in_catch', 'no_qualified_continuation', 'receive_without_timeout']);
    expect(report.warnings).toEqual(findHazards(src, 'stuck.ts'));
    // It loaded: a process runs it.
    const pid = await n.spawn('stuck', 'loop', [7]);
    const inbox = system.inbox();
    system.send(pid, 'job');
    system.send(pid, { from: inbox.pid });
    expect(await inbox.receive()).toBe(8);

    // A clean module has no warnings.
    const clean = await n.load(
      'clean',
      localLoop
        .replace("import { receive, on, after, send } from 'subnode';", "import { receive, on, after, send } from 'subnode';\nimport * as self from './clean';")
        .replace('after(1000, () => loop(n))', 'after(1000, () => self.loop(n))'),
    );
    expect(clean.warnings).toEqual([]);
  });
});
