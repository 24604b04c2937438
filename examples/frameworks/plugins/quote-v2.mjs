// Version 2 of the pricing rule: 10 % off from 10 items.
export const rule = '10.00 per item, 10 % off from 10 items';

/** @param {{ sku: string, qty: number }} order */
export function quote({ sku, qty }) {
  const total = qty * 10 * (qty >= 10 ? 0.9 : 1);
  return { sku, qty, total: Number(total.toFixed(2)), rule };
}
