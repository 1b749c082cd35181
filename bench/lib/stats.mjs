export function median(values) {
  return quantile(values, 0.5);
}

/** Linear-interpolated quantile (q in 0..1) of unsorted values; NaN when empty. */
export function quantile(values, q) {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return quantileSorted(sorted, q);
}

export function quantileSorted(sorted, q) {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function max(values) {
  let m = -Infinity;
  for (const v of values) if (v > m) m = v;
  return m;
}

export function min(values) {
  let m = Infinity;
  for (const v of values) if (v < m) m = v;
  return m;
}

/**
 * The median of a[i] / b[i]: each ratio compares two measurements taken in the
 * same round, moments apart, so a machine that gets busier or quieter during
 * the run moves both sides alike. NaN when either side is missing.
 */
export function pairedRatio(a, b) {
  if (!a || !b || a.length === 0 || a.length !== b.length) return NaN;
  return median(a.map((x, i) => x / b[i]));
}

/** a / b, or NaN when either is missing. */
export function ratio(a, b) {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : NaN;
}
