// Bare Comlink over worker_threads, with Comlink's own node-adapter.
import { parentPort } from 'node:worker_threads';
import { expose } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';

expose({ noop() {} }, nodeEndpoint(parentPort));
