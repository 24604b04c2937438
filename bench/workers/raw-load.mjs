// The floor of a fresh swap of a big CommonJS module with a warm cache, without isoplug: a bare worker
// reads the source and V8's cached data, compiles with it (vm.Script), runs the module as Node wraps
// CommonJS, calls version() and replies. What any loader pays at least, in the same run.
import { readFileSync } from 'node:fs';
import { Script } from 'node:vm';
import { parentPort, workerData } from 'node:worker_threads';

const { path, cache } = workerData;
const source = readFileSync(path, 'utf8');
const script = new Script(`(function (exports, require, module, __filename, __dirname) { ${source}\n})`, {
  filename: path,
  cachedData: readFileSync(cache),
});
const module = { exports: {} };
script.runInThisContext()(module.exports, undefined, module, path, '');
parentPort.postMessage({ version: module.exports.version(), rejected: script.cachedDataRejected === true });
