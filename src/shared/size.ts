/**
 * An estimate of how many bytes structured clone would produce for a value, which stops as soon as it
 * passes a limit: checking a 1M-object graph against a 1 MB limit looks at a few thousand nodes, not a
 * million. Iterative (no recursion), so a 200k-level nesting cannot overflow the stack. Used on both
 * sides of the boundary; no Node-only imports.
 */
// eslint-disable-next-line @typescript-eslint/unbound-method -- always called as hasOwn.call(object, key)
const hasOwn = Object.prototype.hasOwnProperty;

/** True when `value` would serialize to more than `limit` bytes (by estimate). May throw what reading `value` throws. */
export function exceedsBytes(value: unknown, limit: number): boolean {
  let total = 0;
  const stack: unknown[] = [value];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') total += v.length + 4;
    else if (typeof v !== 'object' || v === null) total += 9;
    else if (seen.has(v)) total += 4;
    else {
      seen.add(v);
      total += 8;
      if (ArrayBuffer.isView(v)) total += v.byteLength;
      else if (v instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && v instanceof SharedArrayBuffer))
        total += v.byteLength;
      else if (v instanceof Map) {
        for (const [key, item] of v) {
          stack.push(key, item);
          if ((total += 2) > limit) return true;
        }
      } else if (v instanceof Set) {
        for (const item of v) {
          stack.push(item);
          if ((total += 1) > limit) return true;
        }
      } else if (Array.isArray(v)) {
        for (let i = 0; i < v.length && total <= limit; i++) {
          stack.push(v[i]);
          total += 1;
        }
      } else {
        for (const key in v) {
          if (!hasOwn.call(v, key)) continue;
          total += key.length + 2;
          stack.push((v as Record<string, unknown>)[key]);
          if (total > limit) return true;
        }
      }
    }
    if (total > limit) return true;
  }
  return false;
}
