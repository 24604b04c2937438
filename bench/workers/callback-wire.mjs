// Two ways a worker can call a host function, for the `callbacks` part, beside isoplug's own:
// - `{ t: 'comlink', port, n }`: bare Comlink on a port of its own (what isoplug does, without its filter);
// - `{ t: 'wire', n }`: on the same port as the calls, one tagged request and reply per invocation
//   (`{ t: 'cb', id, args }` → `{ t: 'cbr', id, value }`), the shape a callback on isoplug's wire would take.
// Each runs `n` invocations one after the other and answers `{ t: 'done', n }`.
import { parentPort } from 'node:worker_threads';
import { releaseProxy, wrap } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';

const pending = new Map();
let nextId = 0;
const viaWire = (value) =>
  new Promise((resolve) => {
    const id = ++nextId;
    pending.set(id, resolve);
    parentPort.postMessage({ t: 'cb', id, args: [value] });
  });

parentPort.on('message', async (message) => {
  if (message.t === 'cbr') {
    const resolve = pending.get(message.id);
    pending.delete(message.id);
    return resolve(message.value);
  }
  if (message.t === 'wire') {
    for (let i = 0; i < message.n; i++) await viaWire(i);
  } else if (message.t === 'comlink') {
    const cb = wrap(nodeEndpoint(message.port));
    for (let i = 0; i < message.n; i++) await cb(i);
    cb[releaseProxy]();
  }
  parentPort.postMessage({ t: 'done', n: message.n });
});
