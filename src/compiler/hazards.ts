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
import ts from 'typescript';
import type { Hazard } from '../kernel/types.js';

interface FnFacts {
  name: string;
  line: number;
  /** Local top-level functions this one calls. */
  calls: Set<string>;
  receives: ts.CallExpression[];
  qualified: boolean;
  catchCalls: Set<string>;
}

export function findHazards(source: string, filename = 'module.ts', module = moduleBase(filename)): Hazard[] {
  const file = ts.createSourceFile(filename, source, ts.ScriptTarget.ES2022, true);
  const apiNames = new Set<string>(); // local names of receive/after/next imported from subnode
  const apiNamespaces = new Set<string>(); // `import * as sn from 'subnode'`
  const namespaces = new Set<string>(); // `import * as x` / default imports of other modules
  const importedFns = new Set<string>(); // named imports of other modules' functions (qualified)
  const fns = new Map<string, FnFacts>();

  for (const stmt of file.statements) {
    if (ts.isImportDeclaration(stmt) && ts.isStringLiteral(stmt.moduleSpecifier)) {
      const from = stmt.moduleSpecifier.text;
      const clause = stmt.importClause;
      if (!clause) continue;
      const isApi = from === 'subnode' || from === 'subnode/process';
      if (clause.name && !isApi) namespaces.add(clause.name.text);
      const bindings = clause.namedBindings;
      if (bindings && ts.isNamespaceImport(bindings)) (isApi ? apiNamespaces : namespaces).add(bindings.name.text);
      if (bindings && ts.isNamedImports(bindings)) {
        for (const el of bindings.elements) {
          const imported = (el.propertyName ?? el.name).text;
          if (isApi && ['receive', 'after', 'next'].includes(imported)) apiNames.add(`${imported}:${el.name.text}`);
          else if (!isApi) importedFns.add(el.name.text);
        }
      }
    }
  }
  const apiLocal = (what: string): string | undefined => [...apiNames].find((n) => n.startsWith(`${what}:`))?.split(':')[1];
  const receiveName = apiLocal('receive') ?? 'receive';
  const afterName = apiLocal('after') ?? 'after';
  /** `receive(...)` or `sn.receive(...)` (and the same for after). */
  const isApiCall = (node: ts.Node, local: string, name: string): boolean => {
    if (!ts.isCallExpression(node)) return false;
    const callee = node.expression;
    if (ts.isIdentifier(callee)) return callee.text === local;
    return ts.isPropertyAccessExpression(callee) && ts.isIdentifier(callee.expression) && apiNamespaces.has(callee.expression.text) && callee.name.text === name;
  };

  const topLevel = new Set<string>();
  for (const stmt of file.statements) {
    if (ts.isFunctionDeclaration(stmt) && stmt.name) topLevel.add(stmt.name.text);
    if (ts.isVariableStatement(stmt)) {
      for (const d of stmt.declarationList.declarations) {
        if (ts.isIdentifier(d.name) && d.initializer && (ts.isArrowFunction(d.initializer) || ts.isFunctionExpression(d.initializer))) topLevel.add(d.name.text);
      }
    }
  }

  const facts = (name: string, body: ts.Node): FnFacts => {
    const f: FnFacts = { name, line: file.getLineAndCharacterOfPosition(body.getStart()).line + 1, calls: new Set(), receives: [], qualified: false, catchCalls: new Set() };
    const visit = (node: ts.Node, inCatch: boolean): void => {
      if (isApiCall(node, receiveName, 'receive')) f.receives.push(node as ts.CallExpression);
      if (ts.isCallExpression(node)) {
        const callee = node.expression;
        if (ts.isIdentifier(callee)) {
          if (topLevel.has(callee.text)) { f.calls.add(callee.text); if (inCatch) f.catchCalls.add(callee.text); }
          if (importedFns.has(callee.text) && inTailPosition(node)) f.qualified = true;
        } else if (ts.isPropertyAccessExpression(callee) && ts.isIdentifier(callee.expression) && namespaces.has(callee.expression.text) && inTailPosition(node)) {
          f.qualified = true;
        }
      }
      // A local function passed as a value (next(loop, s), spawn(loop)) continues there too.
      if (ts.isIdentifier(node) && topLevel.has(node.text) && node.parent && ts.isCallExpression(node.parent) && node.parent.arguments.includes(node)) f.calls.add(node.text);
      if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression) && namespaces.has(node.expression.text) && node.parent && ts.isCallExpression(node.parent) && node.parent.arguments.includes(node)) f.qualified = true;
      ts.forEachChild(node, (child) => visit(child, inCatch || ts.isCatchClause(node)));
    };
    visit(body, false);
    return f;
  };

  for (const stmt of file.statements) {
    if (ts.isFunctionDeclaration(stmt) && stmt.name && stmt.body) fns.set(stmt.name.text, facts(stmt.name.text, stmt));
    if (ts.isVariableStatement(stmt)) {
      for (const d of stmt.declarationList.declarations) {
        if (ts.isIdentifier(d.name) && d.initializer && (ts.isArrowFunction(d.initializer) || ts.isFunctionExpression(d.initializer))) fns.set(d.name.text, facts(d.name.text, d));
      }
    }
  }

  const hazards: Hazard[] = [];
  for (const cycle of cyclesOf(fns)) {
    const members = cycle.map((n) => fns.get(n)!);
    const receiving = members.filter((m) => m.receives.length);
    if (!receiving.length) continue;
    const head = receiving[0]!;
    const names = cycle.map((n) => `${n}()`).join(' → ');
    if (!members.some((m) => m.qualified)) {
      hazards.push({ kind: 'no_qualified_continuation', function: head.name, line: head.line,
        message: `the loop ${names} only continues by local calls: its processes can never leave this version, and a purge kills them. Continue through the module's namespace (e.g. \`import * as self from './${module}'\`, then \`self.${head.name}(...)\`) on some path.` });
    }
    for (const m of receiving) {
      for (const r of m.receives) {
        const hasAfter = r.arguments.some((a) => isApiCall(a, afterName, 'after'));
        if (!hasAfter) {
          hazards.push({ kind: 'receive_without_timeout', function: m.name, line: file.getLineAndCharacterOfPosition(r.getStart()).line + 1,
            message: `a receive in the loop ${names} has no after(): an idle process waits in this version until a message comes, whatever loads meanwhile.` });
        }
      }
    }
    for (const m of members) {
      const back = [...m.catchCalls].filter((c) => cycle.includes(c));
      if (back.length) {
        hazards.push({ kind: 'local_call_in_catch', function: m.name, line: m.line,
          message: `${m.name} continues the loop with a local call to ${back.join(', ')} from a catch block: that path stays in this version.` });
      }
    }
  }
  return hazards;
}

/** Whether a call's value is what the enclosing function returns: a continuation, not a helper call. */
function inTailPosition(node: ts.Node): boolean {
  let child: ts.Node = node;
  for (let parent = node.parent; parent; child = parent, parent = parent.parent) {
    if (ts.isReturnStatement(parent)) return true;
    if (ts.isArrowFunction(parent)) return parent.body === child;
    if (ts.isParenthesizedExpression(parent) || ts.isAsExpression(parent)) continue;
    if (ts.isConditionalExpression(parent) && parent.condition !== child) continue;
    if (ts.isBinaryExpression(parent) && [ts.SyntaxKind.BarBarToken, ts.SyntaxKind.QuestionQuestionToken, ts.SyntaxKind.AmpersandAmpersandToken].includes(parent.operatorToken.kind) && parent.left !== child) continue;
    return false;
  }
  return false;
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
      if (!indexOf.has(w)) { connect(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indexOf.get(w)!));
    }
    if (low.get(v) === indexOf.get(v)) {
      const scc: string[] = [];
      let w: string;
      do { w = stack.pop()!; onStack.delete(w); scc.push(w); } while (w !== v);
      if (scc.length > 1 || fns.get(v)!.calls.has(v)) out.push(scc.reverse());
    }
  };
  for (const v of fns.keys()) if (!indexOf.has(v)) connect(v);
  return out;
}

function moduleBase(filename: string): string {
  return filename.replace(/^.*\//, '').replace(/\.[^.]+$/, '');
}
