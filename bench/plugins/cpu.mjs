// The isoplug plugin of the threads part: the shared CPU-bound task (lib/cpu.mjs), and how many
// tasks this thread served (each thread of a version has its own module state).
import { spin } from '../lib/cpu.mjs';

let served = 0;
export function work(n) {
  served++;
  return spin(n);
}
export function servedHere() {
  return served;
}
