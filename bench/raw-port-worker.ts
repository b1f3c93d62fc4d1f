/**
 * Baseline worker for cross-node throughput: raw `postMessage` over a MessageChannel port between
 * two worker threads, with the same envelopes subnode puts on the wire (`[0, pid, { n }]`).
 * Role `sender` posts N envelopes, one per post or in arrays of `batch`; role `receiver` counts
 * them and tells the main thread when all have arrived.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';

type Role = 'sender' | 'receiver';
interface Setup {
  role: Role;
  port: MessagePort;
}
export interface Go {
  n: number;
  batch: number;
}

const { role, port } = workerData as Setup;
const main = parentPort!;
const TO = '<b.1>';

if (role === 'sender') {
  main.on('message', ({ n, batch }: Go) => {
    if (batch <= 1) {
      for (let i = 0; i < n; i++) port.postMessage([0, TO, { n: i }]);
    } else {
      let chunk: unknown[] = [];
      for (let i = 0; i < n; i++) {
        chunk.push([0, TO, { n: i }]);
        if (chunk.length === batch) {
          port.postMessage(chunk);
          chunk = [];
        }
      }
      if (chunk.length) port.postMessage(chunk);
    }
  });
} else {
  let expected = 0;
  let batched = false;
  let count = 0;
  let sum = 0;
  main.on('message', ({ n, batch }: Go) => {
    expected = n;
    batched = batch > 1;
    count = 0;
    sum = 0;
    main.postMessage({ t: 'armed' });
  });
  port.on('message', (message: unknown) => {
    if (batched) {
      const envelopes = message as [number, string, { n: number }][];
      for (let i = 0; i < envelopes.length; i++) sum += envelopes[i]![2].n;
      count += envelopes.length;
    } else {
      sum += (message as [number, string, { n: number }])[2].n;
      count++;
    }
    if (count === expected) main.postMessage({ t: 'done', sum });
  });
}
main.postMessage({ t: 'ready' });
