// The CPU-bound task of the threads part, one function for every peer: the isoplug plugin
// (plugins/cpu.mjs) and the pool task (workers/cpu-task.mjs) both import it from here, so every peer
// runs the same code. Pure JS, no allocation: an FNV-1a-style hash over `n` rounds.
//
// `h` starts as an int32 (0x811c9dc5 | 0), so the loop has one representation whoever calls it. With
// the plain 0x811c9dc5 (above int32) V8 sometimes compiled the loop on doubles once `spin` was inlined
// into a pool's message handler: 4× slower in piscina and tinypool after a second or two, not in isoplug.
export function spin(n) {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < n; i++) {
    h ^= i & 0xff;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * The round count for a task of about `targetMs` on this machine, measured in the calling thread
 * after a warm-up (median of a few timings): { n, ms } where `ms` is what `spin(n)` then took here.
 */
export function calibrate(targetMs) {
  const time = (n) => {
    const samples = [];
    for (let i = 0; i < 7; i++) {
      const t0 = performance.now();
      spin(n);
      samples.push(performance.now() - t0);
    }
    samples.sort((a, b) => a - b);
    return samples[3];
  };
  const probe = 1_000_000;
  for (let i = 0; i < 20; i++) spin(probe);
  const n = Math.max(10_000, Math.round((probe * targetMs) / time(probe)));
  return { n, ms: time(n) };
}
