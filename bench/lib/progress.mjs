// One progress line on stderr: rewritten in place on a terminal, throttled plain lines otherwise
// (so a log file or CI output stays readable).
const tty = Boolean(process.stderr.isTTY);
let shown = '';
let lastPlain = 0;

export function progress(text, { force = false } = {}) {
  if (tty) {
    const width = process.stderr.columns || 100;
    process.stderr.write(`\r\x1b[K${text.length >= width ? text.slice(0, width - 2) + '…' : text}`);
    shown = text;
    return;
  }
  const now = Date.now();
  if (!force && now - lastPlain < 1500) return;
  lastPlain = now;
  process.stderr.write(`${text}\n`);
}

/** Clears the progress line before something else is printed. */
export function progressClear() {
  if (tty && shown) process.stderr.write('\r\x1b[K');
  shown = '';
}
