// The scaling chart as a standalone SVG, built as a string: throughput and
// max wait against the number of processes, both on log scales (the
// contenders are orders of magnitude apart); below them, this library's
// readers, exclusive and shared, and the same work with no lock:
// throughput, and throughput over one reader's on a linear scale.

const STYLE = {
  ours: { color: '#2563eb', dash: '', width: 3 },
  c: { color: '#6b7280', dash: '6 4', width: 2 },
  fsne: { color: '#ea580c', dash: '', width: 2 },
  plf: { color: '#16a34a', dash: '', width: 2 },
  exclusive: { color: '#7c3aed', dash: '', width: 2 },
  shared: { color: '#0891b2', dash: '', width: 3 },
  unlocked: { color: '#9ca3af', dash: '3 3', width: 2 },
};

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceNumber(v) {
  if (v >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
}

/** Decade ticks (1, 10, 100, ...) covering [lo, hi], with 2 and 5 in between when the range is short. */
function logTicks(lo, hi) {
  const from = Math.floor(Math.log10(lo));
  const to = Math.ceil(Math.log10(hi));
  const ticks = [];
  for (let e = from; e <= to; e++) {
    for (const m of to - from <= 2 ? [1, 2, 5] : [1]) {
      const t = m * 10 ** e;
      if (t >= 10 ** from && t <= 10 ** to) ticks.push(t);
    }
  }
  return { ticks, lo: 10 ** from, hi: 10 ** to };
}

/** Ticks every 0.5 from 0 to a little above the largest value. */
function linearTicks(hi) {
  // At least 2×: two CPUs' worth, the ideal the readers are measured against.
  const top = Math.max(2, Math.ceil(hi * 2) / 2);
  const ticks = [];
  for (let t = 0; t <= top + 1e-9; t += top > 4 ? 1 : 0.5) ticks.push(t);
  return { ticks, lo: 0, hi: top };
}

function panel({ x0, y0, w, h, title, unit, points, series, value, labels, linear = false }) {
  const values = [];
  for (const s of Object.values(series)) for (const pt of s) if (value(pt) > 0) values.push(value(pt));
  if (values.length === 0) return '';
  const { ticks, lo, hi } = linear ? linearTicks(Math.max(...values)) : logTicks(Math.min(...values), Math.max(...values));
  const px = (i) => x0 + (points.length === 1 ? w / 2 : (i * w) / (points.length - 1));
  const scale = linear ? (v) => v : (v) => Math.log10(Math.max(v, lo));
  const py = (v) => y0 + h - ((scale(v) - scale(lo)) / (scale(hi) - scale(lo))) * h;
  const out = [];
  out.push(`<text x="${x0 + w / 2}" y="${y0 - 14}" text-anchor="middle" font-size="15" font-weight="600">${esc(title)}</text>`);
  for (const t of ticks) {
    const y = py(t).toFixed(1);
    out.push(`<line x1="${x0}" x2="${x0 + w}" y1="${y}" y2="${y}" stroke="#e5e7eb"/>`);
    out.push(`<text x="${x0 - 8}" y="${y}" dy="4" text-anchor="end" font-size="11" fill="#374151">${esc(linear ? `${t}×` : niceNumber(t))}</text>`);
  }
  points.forEach((p, i) => {
    out.push(`<line x1="${px(i)}" x2="${px(i)}" y1="${y0}" y2="${y0 + h}" stroke="#f3f4f6"/>`);
    out.push(`<text x="${px(i)}" y="${y0 + h + 18}" text-anchor="middle" font-size="11" fill="#374151">${p}</text>`);
  });
  out.push(`<rect x="${x0}" y="${y0}" width="${w}" height="${h}" fill="none" stroke="#9ca3af"/>`);
  out.push(`<text x="${x0 + w / 2}" y="${y0 + h + 36}" text-anchor="middle" font-size="12" fill="#374151">processes</text>`);
  out.push(`<text transform="translate(${x0 - 52},${y0 + h / 2}) rotate(-90)" text-anchor="middle" font-size="12" fill="#374151">${esc(unit)}</text>`);
  for (const [name, s] of Object.entries(series)) {
    const st = STYLE[name] ?? { color: '#111827', dash: '', width: 2 };
    const pts = s.filter((pt) => value(pt) > 0).map((pt) => [px(points.indexOf(pt.procs)), py(value(pt))]);
    out.push(
      `<polyline fill="none" stroke="${st.color}" stroke-width="${st.width}"${st.dash ? ` stroke-dasharray="${st.dash}"` : ''} points="${pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"><title>${esc(labels[name] ?? name)}</title></polyline>`,
    );
    for (const [x, y] of pts) out.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3.5" fill="${st.color}"/>`);
  }
  return out.join('\n');
}

function legend(names, labels, y, width) {
  const legendW = 265;
  const parts = [];
  let lx = width / 2 - (names.length * legendW) / 2;
  for (const name of names) {
    const st = STYLE[name] ?? { color: '#111827', dash: '', width: 2 };
    parts.push(`<line x1="${lx}" x2="${lx + 28}" y1="${y}" y2="${y}" stroke="${st.color}" stroke-width="${st.width}"${st.dash ? ` stroke-dasharray="${st.dash}"` : ''}/>`);
    parts.push(`<text x="${lx + 36}" y="${y + 4}" font-size="12">${esc(labels[name] ?? name)}</text>`);
    lx += legendW;
  }
  return parts.join('\n');
}

const pick = (series, keep) => Object.fromEntries(Object.entries(series).filter(([name]) => keep(name)));

/**
 * scaling: { points: [1,2,4,...], series: { name: [{ procs, throughput, waitMaxMs, overOne }] } },
 * where the series exclusive, shared and unlocked are the readers' workload.
 * labels: display name per contender; note: one line under the title.
 */
export function scalingChart(scaling, labels, note) {
  const W = 960;
  const readers = (name) => name === 'exclusive' || name === 'shared' || name === 'unlocked';
  const counter = pick(scaling.series, (n) => !readers(n));
  const reading = pick(scaling.series, readers);
  const hasReaders = Object.keys(reading).length > 0;
  const H = hasReaders ? 880 : 440;
  const common = { points: scaling.points, labels, w: 360, h: 270 };
  const top = { ...common, series: counter, y0: 90 };
  const bottom = { ...common, series: reading, y0: 530 };
  const kib = (scaling.dataBytes ?? 4096) / 1024;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="17" font-weight="700">One lock, N processes: read-increment-write of a counter file</text>`,
    `<text x="${W / 2}" y="42" text-anchor="middle" font-size="11" fill="#6b7280">${esc(note)}</text>`,
    panel({ ...top, x0: 90, title: 'Throughput (cycles/s, higher is better)', unit: 'cycles per second', value: (pt) => pt.throughput }),
    panel({ ...top, x0: 570, title: 'Longest single wait (ms, lower is better)', unit: 'max wait (ms)', value: (pt) => pt.waitMaxMs }),
    legend(Object.keys(counter), labels, 418, W),
  ];
  if (hasReaders) {
    parts.push(
      `<text x="${W / 2}" y="470" text-anchor="middle" font-size="17" font-weight="700">N reader processes of native-file-lock: read and hash a ${kib} KiB file under the lock</text>`,
      panel({ ...bottom, x0: 90, title: 'Throughput (cycles/s, higher is better)', unit: 'cycles per second', value: (pt) => pt.throughput }),
      panel({ ...bottom, x0: 570, title: "Throughput over one reader's", unit: 'N processes / 1 process', value: (pt) => pt.overOne, linear: true }),
      legend(Object.keys(reading), labels, H - 20, W),
    );
  }
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
