// A pricing rule as a plugin: the route calls `quote()`, the rule changes by a hot swap.
export const rule = 'flat 10.00 per item';

/** @param {{ sku: string, qty: number }} order */
export function quote({ sku, qty }) {
  return { sku, qty, total: Number((qty * 10).toFixed(2)), rule };
}
