// The isoplug plugin of the `callbacks` part: calls a host callback `n` times, one after the other.
export async function invokeMany(cb, n) {
  for (let i = 0; i < n; i++) await cb(i);
  return n;
}
export async function invokeOnce(cb) {
  return await cb(1);
}
export function echo(value) {
  return value;
}
