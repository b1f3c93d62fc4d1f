/** comlink over a worker_threads MessagePort (comlink speaks the DOM port shape natively). */
import type { MessagePort } from 'node:worker_threads';
import type { Endpoint } from 'comlink';
import adapter from 'comlink/dist/umd/node-adapter.js';

type NodeEndpoint = (port: MessagePort) => Endpoint;
// The adapter is a UMD bundle: Node hands its function over as the default export, while its
// typings describe an ES module namespace. Accept either shape.
const nodeEndpoint = ((adapter as unknown as { default?: NodeEndpoint }).default ?? adapter) as unknown as NodeEndpoint;

export function portEndpoint(port: MessagePort): Endpoint {
  return nodeEndpoint(port);
}
