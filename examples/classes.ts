/**
 * (d) A class of processes upgraded together. `animal` is a base module; `cat` and `dog` are
 * "subclasses": server callback modules whose state is an animal and which call animal's
 * functions. Animal v2 changes the state's shape, so one plan upgrades all three: it suspends
 * every cat and dog process, loads animal first (the others depend on it), converts each state
 * through the new base class, and resumes them all at once.
 * Run: node --no-node-snapshot dist/examples/classes.js
 */
import { System } from '../src/index.js';

// Relative to this file once built (dist/examples/): { path, base: import.meta.url } works from any cwd.
const file = (name: string) => ({ path: `../../examples/modules/${name}`, base: import.meta.url });
const system = await System.start({
  nodes: [{ name: 'zoo', modules: { animal: file('v1/animal.ts'), cat: file('v1/cat.ts'), dog: file('v1/dog.ts') } }],
});
const zoo = system.node('zoo');
const pets = [
  await zoo.startServer('cat', ['Tom']),
  await zoo.startServer('cat', ['Felix']),
  await zoo.startServer('dog', ['Rex']),
  await zoo.startServer('dog', ['Laika']),
];
for (const pid of pets) console.log(`before: ${await system.call(pid, 'describe')}`);

const report = await system.upgrade({
  modules: [
    { module: 'cat', source: file('v2/cat.ts'), dependsOn: ['animal'], extra: { moods: { cat: 'sleepy' } } },
    { module: 'dog', source: file('v2/dog.ts'), dependsOn: ['animal'], extra: { moods: { dog: 'excited' } } },
    { module: 'animal', source: file('v2/animal.ts'), change: 'load' },
  ],
});
const node = report.nodes[0]!;
if (node.status !== 'upgraded') throw new Error(`upgrade failed: ${JSON.stringify(node)}`);
console.log(`plan: loaded ${node.loaded.map((l) => `${l.module} v${l.version}`).join(', ')}; ${node.upgraded.length} processes converted together`);
for (const pid of pets) console.log(`after:  ${await system.call(pid, 'describe')}`);
await system.stop();
