// A small hand-written SVG line-chart writer: panels side by side, each with axes, ticks, grid,
// axis labels and its own y scale; one legend and one title for the figure. No dependencies.
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function niceStep(range, ticks) {
  const raw = range / Math.max(1, ticks);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
}

function niceScale(min, max, ticks = 5) {
  if (!(max > min)) max = min + 1;
  const step = niceStep(max - min, ticks);
  const lo = Math.floor(min / step) * step;
  const hi = Math.ceil(max / step) * step;
  const values = [];
  for (let v = lo; v <= hi + step / 2; v += step) values.push(Number(v.toFixed(10)));
  return { lo, hi, values, step };
}

const tickLabel = (v, step) =>
  step >= 1
    ? v.toLocaleString('en-US', { maximumFractionDigits: 0 })
    : v.toFixed(Math.min(3, Math.ceil(-Math.log10(step))));

/**
 * panels: [{ title, yLabel, series: [{ name, color, dash?, points: [[x, y], …] }], yFromZero? }]
 * Returns the SVG document as a string.
 */
export function lineChart({ title, subtitle, xLabel, panels, legend, panelWidth = 420, panelHeight = 300 }) {
  const margin = { top: 74, left: 70, right: 24, bottom: 92 };
  const gap = 70;
  const width = margin.left + panels.length * panelWidth + (panels.length - 1) * gap + margin.right;
  const height = margin.top + panelHeight + margin.bottom;
  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(
    `<text x="${width / 2}" y="26" text-anchor="middle" font-size="17" font-weight="600" fill="#111">${esc(title)}</text>`,
  );
  if (subtitle)
    out.push(`<text x="${width / 2}" y="46" text-anchor="middle" font-size="12" fill="#555">${esc(subtitle)}</text>`);

  panels.forEach((panel, p) => {
    const x0 = margin.left + p * (panelWidth + gap);
    const y0 = margin.top;
    const all = panel.series.flatMap((s) => s.points);
    const xs = all.map(([x]) => x);
    const ys = all.map(([, y]) => y);
    const xScale = niceScale(Math.min(0, ...xs), Math.max(1, ...xs), 5);
    const yMin = panel.yFromZero === false ? Math.min(...ys) : 0;
    const yScale = niceScale(Math.min(yMin, ...ys), Math.max(...ys, yMin + 1e-9), 5);
    const px = (x) => x0 + ((x - xScale.lo) / (xScale.hi - xScale.lo)) * panelWidth;
    const py = (y) => y0 + panelHeight - ((y - yScale.lo) / (yScale.hi - yScale.lo)) * panelHeight;

    out.push(`<g>`);
    out.push(
      `<text x="${x0 + panelWidth / 2}" y="${y0 - 12}" text-anchor="middle" font-size="13" font-weight="600" fill="#222">${esc(panel.title)}</text>`,
    );
    for (const v of yScale.values) {
      const y = py(v).toFixed(1);
      out.push(`<line x1="${x0}" y1="${y}" x2="${x0 + panelWidth}" y2="${y}" stroke="#e5e5e5"/>`);
      out.push(
        `<text x="${x0 - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="#444">${tickLabel(v, yScale.step)}</text>`,
      );
    }
    for (const v of xScale.values) {
      const x = px(v).toFixed(1);
      out.push(`<line x1="${x}" y1="${y0}" x2="${x}" y2="${y0 + panelHeight}" stroke="#f0f0f0"/>`);
      out.push(
        `<text x="${x}" y="${y0 + panelHeight + 16}" text-anchor="middle" fill="#444">${tickLabel(v, xScale.step)}</text>`,
      );
    }
    out.push(`<rect x="${x0}" y="${y0}" width="${panelWidth}" height="${panelHeight}" fill="none" stroke="#888"/>`);
    out.push(
      `<text x="${x0 + panelWidth / 2}" y="${y0 + panelHeight + 36}" text-anchor="middle" fill="#222">${esc(xLabel)}</text>`,
    );
    const ly = y0 + panelHeight / 2;
    out.push(
      `<text x="${x0 - 50}" y="${ly}" text-anchor="middle" fill="#222" transform="rotate(-90 ${x0 - 50} ${ly})">${esc(panel.yLabel)}</text>`,
    );
    for (const s of panel.series) {
      if (!s.points.length) continue;
      const d = s.points.map(([x, y], i) => `${i ? 'L' : 'M'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
      out.push(
        `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}><title>${esc(s.name)}</title></path>`,
      );
    }
    out.push(`</g>`);
  });

  // Legend, centred under the panels.
  const items = legend ?? [];
  const itemWidth = Math.max(120, ...items.map((item) => 34 + [...item.name].length * 6.8 + 24));
  const cols = Math.max(1, Math.min(items.length, Math.floor((width - 40) / itemWidth)));
  const lx0 = (width - cols * itemWidth) / 2;
  const ly0 = margin.top + panelHeight + 56;
  items.forEach((item, i) => {
    const x = lx0 + (i % cols) * itemWidth;
    const y = ly0 + Math.floor(i / cols) * 18;
    out.push(
      `<line x1="${x}" y1="${y}" x2="${x + 28}" y2="${y}" stroke="${item.color}" stroke-width="2.5"${item.dash ? ` stroke-dasharray="${item.dash}"` : ''}/>`,
    );
    out.push(`<text x="${x + 34}" y="${y}" dominant-baseline="middle" fill="#222">${esc(item.name)}</text>`);
  });
  out.push(`</svg>`);
  return out.join('\n') + '\n';
}
