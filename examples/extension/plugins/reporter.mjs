// Reads this reload's extension in onInit and reports it; calls the host's `log` service through the vault.
let ctx;
let seen;

export async function onInit(c) {
  ctx = c;
  seen = c.vault.extension; // a copy of what extension() returned for the reload that loaded this version
  await ctx.vault.services.log(`reporter: onInit got extension #${seen.reload}`);
}

export function report() {
  return seen;
}

export async function price(item) {
  // A host service: an async function on the host, reached through a port (no host object in here).
  const cents = await ctx.vault.services.priceOf(item);
  return `${item} costs ${(cents / 100).toFixed(2)}`;
}
