// Small isoplug plugin used by calls, swap and memory. echo-a.mjs is the same code with another
// VERSION, so a swap between the two files loads a different module.
const VERSION = 'b';
let label = VERSION;
export function onLoad(data) {
  if (data && typeof data.label === 'string') label = `${VERSION}:${data.label}`;
}
export function noop() {}
export function echo(value) {
  return value;
}
export function whoami() {
  return label;
}
