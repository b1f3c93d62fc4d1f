/** Baseline for node start: a worker thread (an ESM file) that says hello as soon as it runs. */
import { parentPort } from 'node:worker_threads';

parentPort!.postMessage('ready');
