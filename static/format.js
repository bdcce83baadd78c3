// Number formats shared by the prose, tables and charts.

const d3 = window.d3;

export const formatCount = d3.format(",");
export const formatLoss = d3.format(".3f");
export const formatPercent = d3.format(".1%");

/** 20000000 -> "20 million"; smaller counts with thousands separators. */
export function formatLarge(count) {
  if (count >= 1e9) return `${d3.format(".3~r")(count / 1e9)} billion`;
  if (count >= 1e6) return `${d3.format(".3~r")(count / 1e6)} million`;
  return formatCount(count);
}

/** 5432 seconds -> "1 h 31 min"; under two minutes in seconds. */
export function formatDuration(seconds) {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** The metrics.json entry of a unit, or null when there is no training record. */
export function metricsFor(metrics, unitId) {
  return metrics?.models?.[unitId] ?? null;
}

/** Where a model was trained, as metrics.json records it (older records name none: those were trained on a CPU). */
export function trainedOn(record) {
  return !record.trained_on || record.trained_on === "CPU" ? "a CPU" : `one ${record.trained_on}`;
}
