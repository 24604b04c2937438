// The raw worker_threads baseline: every message (a numeric call id) is posted straight back.
import { parentPort } from 'node:worker_threads';

parentPort.on('message', (id) => parentPort.postMessage(id));
