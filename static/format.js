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

/** A machine as metrics.json names it (older records name none: those were trained on a CPU). */
function machine(device) {
  return !device || device === "CPU" ? "a CPU" : `one ${device}`;
}

/** A model's stretches of training, each on one machine with one loss; records older than legs had one. */
function legsOf(record) {
  return record.legs?.length ? record.legs
    : [{ device: record.trained_on, sampled_words: 0, characters: record.characters_seen, seconds: record.training_seconds }];
}

/** The one machine a model was trained on, or null when it moved between machines or losses. */
export function trainedOn(record) {
  const legs = legsOf(record);
  return legs.length === 1 ? machine(legs[0].device) : null;
}

/** "7 min on one H100", or, for a model trained in legs, each leg's characters, time, machine and loss. */
export function trainingTime(record, { nameMachine = true } = {}) {
  const legs = legsOf(record);
  const loss = (leg) => (leg.sampled_words ? " with a sampled softmax" : "");
  if (legs.length === 1) return `${formatDuration(legs[0].seconds)}${nameMachine ? ` on ${machine(legs[0].device)}` : ""}${loss(legs[0])}`;
  return legs.map((leg) => `${formatLarge(leg.characters)} in ${formatDuration(leg.seconds)} on ${machine(leg.device)}${loss(leg)}`)
    .join(", then ");
}
