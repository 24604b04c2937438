// A plugin returning a big buffer, copied or moved with transfer(); top level or nested in an object.
// `prepare(bytes)` makes the buffer beforehand, so the timed call measures only how the result travels.
import { transfer } from 'isoplug/plugin';

let ready;

export function prepare(bytes) {
  ready = new Uint8Array(bytes).fill(1);
}

export function copied() {
  return ready.buffer;
}

export function moved() {
  return transfer(ready.buffer, [ready.buffer]);
}

export function copiedNested() {
  return { meta: { bytes: ready.byteLength }, data: ready };
}

export function movedNested() {
  return transfer({ meta: { bytes: ready.byteLength }, data: ready }, [ready.buffer]);
}
