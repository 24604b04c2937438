/** `width` calls kept in flight for `ms` (or `count` calls); the block ends when the last settles: calls/s. */
export async function pipelined(call, width, { ms = Infinity, count = Infinity }) {
  const started = performance.now();
  const end = started + ms;
  let issued = 0;
  const lane = async () => {
    while (issued < count && performance.now() < end) {
      issued++;
      await call();
    }
  };
  await Promise.all(Array.from({ length: width }, lane));
  return issued / ((performance.now() - started) / 1000);
}
