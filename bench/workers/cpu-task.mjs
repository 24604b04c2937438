// The task of the piscina and tinypool peers in the threads part: the shared CPU-bound task.
import { spin } from '../lib/cpu.mjs';

export default function work(n) {
  return spin(n);
}
