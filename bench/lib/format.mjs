// Plain-text tables for the console.

export function fmt(value, digits = 2) {
  if (value === undefined || value === null || Number.isNaN(value)) return '—';
  if (typeof value !== 'number') return String(value);
  if (!Number.isFinite(value)) return value > 0 ? '∞' : '-∞';
  const abs = Math.abs(value);
  if (abs >= 100000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(Math.min(digits, 1));
  return value.toFixed(digits);
}

export function ratioText(value) {
  return Number.isFinite(value) ? `${fmt(value)}×` : '—';
}

/** Prints rows (arrays of cells) under a header; numbers are right-aligned, text left-aligned. */
export function table(header, rows, { left = [0] } = {}) {
  const all = [header, ...rows].map((r) => r.map((c) => String(c ?? '')));
  const widths = header.map((_, i) => Math.max(...all.map((r) => [...(r[i] ?? '')].length)));
  const line = (r) =>
    r
      .map((c, i) => {
        const pad = ' '.repeat(widths[i] - [...c].length);
        return left.includes(i) ? c + pad : pad + c;
      })
      .join('  ');
  const out = [line(all[0]), widths.map((w) => '─'.repeat(w)).join('  '), ...all.slice(1).map(line)];
  console.log(out.map((l) => '  ' + l).join('\n'));
}

export function heading(text) {
  console.log(`\n== ${text} ==`);
}
