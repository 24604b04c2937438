// Plain-text tables: first column left-aligned, the rest right-aligned.
export function formatTable(headers, rows, { title } = {}) {
  const all = [headers, ...rows].map((row) =>
    row.map((cell) => (cell === undefined || cell === null ? '' : String(cell))),
  );
  const widths = headers.map((_, c) => Math.max(...all.map((row) => [...(row[c] ?? '')].length)));
  const pad = (text, width, left) => {
    const gap = ' '.repeat(Math.max(0, width - [...text].length));
    return left ? text + gap : gap + text;
  };
  const line = (row) => row.map((cell, c) => pad(cell ?? '', widths[c], c === 0)).join('  ');
  const rule = widths.map((w) => '─'.repeat(w)).join('  ');
  const out = [];
  if (title) out.push(title);
  out.push(line(all[0]), rule, ...all.slice(1).map(line));
  return out.join('\n');
}

/** A number with about three significant digits, thousands separated. */
export function num(value, digits) {
  if (value === null || value === undefined || Number.isNaN(value)) return 'n/a';
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const d = digits ?? (Number.isInteger(value) || abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3);
  return value.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

export function ratio(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return 'n/a';
  // Small ratios keep two significant digits (0.0018×), not 0.00×.
  return `${Math.abs(value) >= 0.1 ? value.toFixed(2) : value.toPrecision(2)}×`;
}
