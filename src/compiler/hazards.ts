/**
 * Load-time hazard warnings: process loops that can never leave the version they run in. The
 * Erlang pitfalls, in subnode's terms:
 *
 * - a loop whose every continuation is a local call (no qualified call anywhere in the cycle):
 *   its processes stay in this version forever, and a purge kills them;
 * - a receive with no `after()` in such a loop: an idle process waits in this version until a
 *   message arrives, however many new versions load meanwhile;
 * - a local call to the loop from a `catch` block: the retry path stays in this version even if
 *   the normal path makes a qualified call (the try/catch pitfall).
 *
 * Warnings only: the source still loads.
 */
import type { ESTree } from 'meriyah';
import type { Hazard } from '../kernel/types.js';
import { parseModule, type Parsed } from './parse.js';

type Node = ESTree.Node;
type CallExpression = ESTree.CallExpression;
type MemberExpression = ESTree.MemberExpression;

interface FnFacts {
  name: string;
  line: number;
  /** Local top-level functions this one calls. */
  calls: Set<string>;
  receives: Call[];
  qualified: boolean;
  catchCalls: Set<string>;
}

/** A call as written in the source: sucrase writes an imported `f(x)` as `_m.f.call(void 0, x)`. */
interface Call {
  node: CallExpression;
  callee: CallExpression['callee'];
  args: CallExpression['arguments'];
}

/**
 * The hazards of a module's source (TypeScript or JavaScript). Throws a LoadError if the source
 * does not parse; `transpile` returns the same analysis with the compiled code, from one parse.
 */
export function findHazards(source: string, filename = 'module.ts', module = moduleBase(filename)): Hazard[] {
  return hazardsOf(parseModule(module, source, filename), module);
}

/**
 * The analysis runs on the compiled body, where every import is already a `require`d namespace:
 * `import * as m` / `import { f }` / a default import of another module all become member reads
 * on a namespace (`m.f`, `_m.f`, `_m.default`), and `import { receive as rcv } from 'subnode'`
 * becomes `_subnode.receive` — renamed imports are resolved for free. Lines are the source's.
 */
export function hazardsOf(parsed: Parsed, module: string): Hazard[] {
  // Every hazard is a loop through a receive, a call that names `receive`: a body whose text never
  // does (and escapes no name: no backslash at all) has none, and the walk is skipped.
  if (!parsed.js.includes('receive') && !parsed.js.includes('\\')) return [];
  // Most modules have no hazard: the tree without positions (a third cheaper to parse) says so;
  // when it finds some, the tree with positions names their lines.
  const found = analyse(parsed.program, () => 0, module);
  return found.length ? analyse(parsed.positioned(), parsed.lineOf, module) : found;
}

function analyse(program: ESTree.Program, lineOf: (offset: number) => number, module: string): Hazard[] {
  const apis = new Set<string>(); // names bound to the subnode API object
  const namespaces = new Set<string>(); // names bound to another module's namespace
  const topLevel = new Set<string>();
  const bodies: [string, Node][] = [];

  for (const stmt of program.body) {
    if (stmt.type === 'FunctionDeclaration' && stmt.id) {
      topLevel.add(stmt.id.name);
      bodies.push([stmt.id.name, stmt]);
    }
    if (stmt.type === 'VariableDeclaration') {
      for (const d of stmt.declarations) {
        if (d.id.type !== 'Identifier' || !d.init) continue;
        const init = d.init;
        if (init.type === 'ArrowFunctionExpression' || init.type === 'FunctionExpression') {
          topLevel.add(d.id.name);
          bodies.push([d.id.name, d]);
        } else if (
          init.type === 'CallExpression' &&
          init.callee.type === 'Identifier' &&
          init.callee.name === 'require' &&
          init.arguments[0]?.type === 'Literal' &&
          typeof init.arguments[0].value === 'string'
        ) {
          const from = init.arguments[0].value;
          (from === 'subnode' || from === 'subnode/process' ? apis : namespaces).add(d.id.name);
        } else if (init.type === 'Identifier') {
          // `import * as self from './m'` → `var _m = require('./m'); var self = _m;`
          if (apis.has(init.name)) apis.add(d.id.name);
          if (namespaces.has(init.name)) namespaces.add(d.id.name);
        }
      }
    }
  }

  /** `receive(...)`, `sn.receive(...)`, or an imported receive under any local name (and after). */
  const isApiCall = (call: Call | undefined, name: string): boolean => {
    if (!call) return false;
    const c = call.callee;
    if (c.type === 'Identifier') return c.name === name;
    return c.type === 'MemberExpression' && c.object.type === 'Identifier' && apis.has(c.object.name) && propertyName(c) === name;
  };
  /** A top-level function named by a reference: `loop`, or `exports.loop` (sucrase's form for an exported const). */
  const localFn = (node: Node): string | undefined => {
    if (node.type === 'Identifier') return topLevel.has((node as Node & { name: string }).name) ? (node as Node & { name: string }).name : undefined;
    if (node.type !== 'MemberExpression') return undefined;
    const m = node as MemberExpression;
    const name = propertyName(m);
    return m.object.type === 'Identifier' && m.object.name === 'exports' && name !== undefined && topLevel.has(name) ? name : undefined;
  };
  /** `m.f` on another module's namespace (or `m.default.f`, a default import's member). */
  const isQualified = (node: Node): boolean => {
    if (node.type !== 'MemberExpression') return false;
    let object = (node as MemberExpression).object;
    if (object.type === 'MemberExpression' && propertyName(object) === 'default') object = object.object;
    return object.type === 'Identifier' && namespaces.has(object.name);
  };

  const facts = (name: string, body: Node): FnFacts => {
    const f: FnFacts = { name, line: lineOf(body.start!), calls: new Set(), receives: [], qualified: false, catchCalls: new Set() };
    walk(body, (node, ancestors, inCatch) => {
      const call = asCall(node);
      if (!call) return;
      if (isApiCall(call, 'receive')) f.receives.push(call);
      const local = localFn(call.callee);
      if (local) {
        f.calls.add(local);
        if (inCatch) f.catchCalls.add(local);
      }
      if (isQualified(call.callee) && inTailPosition(node, ancestors)) f.qualified = true;
      // A local function passed as a value (next(loop, s), spawn(loop)) continues there too.
      for (const arg of call.args) {
        const passed = localFn(arg);
        if (passed) f.calls.add(passed);
        if (isQualified(arg)) f.qualified = true;
      }
    });
    return f;
  };

  const fns = new Map<string, FnFacts>();
  for (const [name, body] of bodies) fns.set(name, facts(name, body));

  const hazards: Hazard[] = [];
  for (const cycle of cyclesOf(fns)) {
    const members = cycle.map((n) => fns.get(n)!);
    const receiving = members.filter((m) => m.receives.length);
    if (!receiving.length) continue;
    const head = receiving[0]!;
    const names = cycle.map((n) => `${n}()`).join(' → ');
    if (!members.some((m) => m.qualified)) {
      hazards.push({
        kind: 'no_qualified_continuation',
        function: head.name,
        line: head.line,
        message: `the loop ${names} only continues by local calls: its processes can never leave this version, and a purge kills them. Continue through the module's namespace (e.g. \`import * as self from './${module}'\`, then \`self.${head.name}(...)\`) on some path.`,
      });
    }
    for (const m of receiving) {
      for (const r of m.receives) {
        const hasAfter = r.args.some((a) => isApiCall(asCall(a), 'after'));
        if (!hasAfter) {
          hazards.push({
            kind: 'receive_without_timeout',
            function: m.name,
            line: lineOf(r.node.start!),
            message: `a receive in the loop ${names} has no after(): an idle process waits in this version until a message comes, whatever loads meanwhile.`,
          });
        }
      }
    }
    for (const m of members) {
      const back = [...m.catchCalls].filter((c) => cycle.includes(c));
      if (back.length) {
        hazards.push({
          kind: 'local_call_in_catch',
          function: m.name,
          line: m.line,
          message: `${m.name} continues the loop with a local call to ${back.join(', ')} from a catch block: that path stays in this version.`,
        });
      }
    }
  }
  return hazards;
}

function propertyName(m: MemberExpression): string | undefined {
  if (!m.computed && m.property.type === 'Identifier') return m.property.name;
  if (m.computed && m.property.type === 'Literal' && typeof m.property.value === 'string') return m.property.value;
  return undefined;
}

/** A call with sucrase's `f.call(void 0, ...args)` and `(0, f)(...args)` forms seen as `f(...args)`. */
function asCall(node: Node): Call | undefined {
  if (node.type !== 'CallExpression') return undefined;
  const call = node as CallExpression;
  let callee = call.callee;
  let args = call.arguments;
  if (
    callee.type === 'MemberExpression' &&
    !callee.computed &&
    callee.property.type === 'Identifier' &&
    callee.property.name === 'call' &&
    args[0]?.type === 'UnaryExpression' &&
    args[0].operator === 'void'
  ) {
    callee = callee.object;
    args = args.slice(1);
  } else if (callee.type === 'SequenceExpression' && callee.expressions.length === 2 && callee.expressions[0]!.type === 'Literal') {
    callee = callee.expressions[1]!;
  }
  return { node: call, callee, args };
}

/** Whether a call's value is what the enclosing function returns: a continuation, not a helper call. */
function inTailPosition(node: Node, ancestors: readonly Node[]): boolean {
  let child = node;
  for (let i = ancestors.length - 1; i >= 0; child = ancestors[i]!, i--) {
    const parent = ancestors[i] as Node & Record<string, unknown>;
    switch (parent.type) {
      case 'ReturnStatement':
        return true;
      case 'ArrowFunctionExpression':
        return parent.body === child;
      case 'ChainExpression':
        continue;
      case 'ConditionalExpression':
        if (parent.test !== child) continue;
        return false;
      case 'LogicalExpression':
        if (parent.left !== child) continue;
        return false;
      default:
        return false;
    }
  }
  return false;
}

/** Visits every node under `root` (itself included) with its ancestors and whether it is inside a catch clause. */
function walk(root: Node, visit: (node: Node, ancestors: readonly Node[], inCatch: boolean) => void): void {
  const ancestors: Node[] = [];
  const go = (node: Node, inCatch: boolean): void => {
    visit(node, ancestors, inCatch);
    ancestors.push(node);
    const childInCatch = inCatch || node.type === 'CatchClause';
    for (const key in node) {
      if (key === 'type' || key === 'start' || key === 'end') continue;
      const value = (node as unknown as Record<string, unknown>)[key];
      if (Array.isArray(value)) {
        for (const v of value) if (v !== null && typeof v === 'object' && typeof (v as Node).type === 'string') go(v as Node, childInCatch);
      } else if (value !== null && typeof value === 'object' && typeof (value as Node).type === 'string') {
        go(value as Node, childInCatch);
      }
    }
    ancestors.pop();
  };
  go(root, false);
}

/** Strongly connected components with a cycle (Tarjan), each as a list of function names. */
function cyclesOf(fns: Map<string, FnFacts>): string[][] {
  let index = 0;
  const indexOf = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const connect = (v: string): void => {
    indexOf.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of fns.get(v)!.calls) {
      if (!fns.has(w)) continue;
      if (!indexOf.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indexOf.get(w)!));
    }
    if (low.get(v) === indexOf.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || fns.get(v)!.calls.has(v)) out.push(scc.reverse());
    }
  };
  for (const v of fns.keys()) if (!indexOf.has(v)) connect(v);
  return out;
}

function moduleBase(filename: string): string {
  return filename.replace(/^.*\//, '').replace(/\.[^.]+$/, '');
}
