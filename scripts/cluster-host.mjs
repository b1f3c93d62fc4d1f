/* global process, setImmediate */
// One host of a subnode cluster, as a separate OS process, driven over IPC (tests, bench).
//   parent → { id, cmd: 'start', options } | { id, cmd: 'eval', code, args } | { id, cmd: 'stop' }
//   child  → { id, ok } | { id, error } | { event } | { cluster } | { ready: true }
// `eval` runs `code` as the body of an async function of (system, ctx, args, System).
import { System } from '../dist/src/index.js';

const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
const ctx = {};
let system;

const send = (message) => {
  try {
    process.send?.(message);
  } catch {
    // The parent is gone or the message cannot be copied: nothing to do.
  }
};

process.on('message', async (message) => {
  const { id, cmd } = message;
  try {
    let ok;
    if (cmd === 'start') {
      system = await System.start(message.options);
      system.on('*', (event) => send({ event }));
      system.cluster?.on('*', (event) => send({ cluster: event }));
      ok = system.nodes();
    } else if (cmd === 'eval') {
      ok = await new AsyncFunction('system', 'ctx', 'args', 'System', message.code)(system, ctx, message.args ?? [], System);
    } else if (cmd === 'stop') {
      await system?.stop();
      ok = true;
      setImmediate(() => process.exit(0));
    } else {
      throw new Error(`unknown command ${cmd}`);
    }
    send({ id, ok });
  } catch (error) {
    send({ id, error: { name: error?.name, code: error?.code, message: String(error?.message ?? error) } });
  }
});
process.on('disconnect', () => process.exit(0));
send({ ready: true });
