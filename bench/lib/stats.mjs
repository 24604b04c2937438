export function sortedCopy(values) {
  return Float64Array.from(values).sort();
}

/** Nearest-rank percentile (p in 0..100) of an already sorted array. */
export function percentileSorted(sorted, p) {
  const n = sorted.length;
  if (n === 0) return NaN;
  const rank = Math.ceil((p / 100) * n);
  return sorted[Math.min(n - 1, Math.max(0, rank - 1))];
}

export function percentile(values, p) {
  return percentileSorted(sortedCopy(values), p);
}

export function median(values) {
  const s = sortedCopy(values);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** Least-squares slope of y over x. */
export function slope(xs, ys) {
  const n = xs.length;
  if (n < 2) return NaN;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) {
    sx += xs[i];
    sy += ys[i];
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

/** A growable Float64 buffer: cheap to push millions of latencies into. */
export class Samples {
  constructor(capacity = 1 << 16) {
    this.buf = new Float64Array(capacity);
    this.length = 0;
  }
  push(value) {
    if (this.length === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = value;
  }
  sorted() {
    return this.buf.slice(0, this.length).sort();
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
