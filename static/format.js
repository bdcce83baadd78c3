// How the page writes a number: every figure formats through these functions, and app/formatting.py
// writes the server's prose the same way. Each rounds half away from zero on the exact value
// (toFixed, toPrecision, toExponential), never truncates.

const d3 = window.d3;
// A no-break space keeps a number and its unit on one line.
export const NBSP = "\u00a0";
const SUPERSCRIPTS = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };
// Below this share a percentage needs a power of ten to be read (0.01 %).
const SMALLEST_PLAIN_SHARE = 1e-4;

/** 25391 -> "25,391". */
export const formatCount = (value) => d3.format(",")(Math.round(value));

/** The minus sign of a negative number as typeset: "−0.040", not a hyphen. */
const withMinus = (text) => text.replace(/^-/, "\u2212");

/** A cross-entropy or a change in nats, three decimals: "2.261", "−0.040". */
export const formatLoss = (value) => withMinus(value.toFixed(3));

/** The ends of an interval joined by an en dash, or by "to" where one is negative ("−0.001 to 0.002"). */
const joinEnds = (low, high) => `${low}${low.startsWith("\u2212") || high.startsWith("\u2212") ? " to " : "–"}${high}`;

/** 5.94e-3 -> "5.9 × 10⁻³": two significant digits and the power of ten, rounded. */
export function formatPower(value) {
  if (value === 0) return "0";
  const [mantissa, exponent] = value.toExponential(1).split("e");
  return `${mantissa} × 10${String(Number(exponent)).replace(/[-0-9]/g, (symbol) => SUPERSCRIPTS[symbol])}`;
}

/** A share as a percentage: "55.3 %" from 1 %, "0.84 %" (two significant digits) below, a power of ten below 0.01 %. */
export function formatPercent(share) {
  const magnitude = Math.abs(share);
  if (magnitude >= 0.01 || share === 0) return `${withMinus((share * 100).toFixed(share ? 1 : 0))}${NBSP}%`;
  if (magnitude >= SMALLEST_PLAIN_SHARE) return `${withMinus((share * 100).toPrecision(2))}${NBSP}%`;
  return `${formatPower(share * 100)}${NBSP}%`;
}

/** A 95 % interval of shares: "49.8–50.2 %". */
export function formatInterval([low, high]) {
  const bare = (share) => formatPercent(share).slice(0, -2);
  return `${joinEnds(bare(low), bare(high))}${NBSP}%`;
}

/** A 95 % interval in nats: "2.250–2.270". */
export const formatNatsInterval = ([low, high]) => joinEnds(formatLoss(low), formatLoss(high));

/** A difference of two shares in percentage points, unsigned: "2.0 points". */
export const formatPoints = (difference) => `${Math.abs(difference * 100).toFixed(1)}${NBSP}points`;

/** 179997436 -> "180.0 million": one decimal, so legs of training add up to their total. */
export const formatMillions = (characters) => `${(characters / 1e6).toFixed(1)}${NBSP}million`;

/** 20000000 -> "20 million", 93304400 -> "93.3 million" (three significant digits); smaller counts with separators. */
export function formatLarge(count) {
  if (count >= 1e9) return `${d3.format(".3~r")(count / 1e9)}${NBSP}billion`;
  if (count >= 1e6) return `${d3.format(".3~r")(count / 1e6)}${NBSP}million`;
  return formatCount(count);
}

/** An axis tick of characters: 20000000 -> "20M", 12607 -> "12.6k" (three significant digits at most). */
export const formatTick = (value) => d3.format(".3~s")(value);

/** 5432 seconds -> "1 h 31 min"; under two minutes in seconds. */
export function formatDuration(seconds) {
  if (seconds < 120) return `${Math.round(seconds)}${NBSP}s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes}${NBSP}min`;
  return `${Math.floor(minutes / 60)}${NBSP}h ${minutes % 60}${NBSP}min`;
}

/** The formats by the name a [data-format] attribute gives them, as app/formatting.py's FORMATS. */
export const FORMATS = {
  percent: formatPercent, interval: formatInterval, points: formatPoints, count: formatCount, nats: formatLoss,
  nats_interval: formatNatsInterval, power: formatPower, millions: formatMillions, large: formatLarge, duration: formatDuration,
};

/**
 * Appends a number from a data file to a d3 selection, as a span that names its source, so tests can hold
 * it against the file: source "metrics.json:models.gru.test.accuracy" (a path into it).
 */
export function appendNumber(parent, value, format, source) {
  return parent.append("span").attr("data-source", source).attr("data-format", format).text(FORMATS[format](value));
}

/** Appends prose to a d3 selection: strings as text, [value, format, source] as numbers that name their source. */
export function appendProse(parent, parts) {
  parts.forEach((part) => {
    if (typeof part === "string") parent.node().append(part);
    else appendNumber(parent, ...part);
  });
  return parent;
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
export function legsOf(record) {
  return record.legs?.length ? record.legs
    : [{ device: record.trained_on, sampled_words: 0, characters: record.characters_seen, seconds: record.training_seconds }];
}

/** The one machine a model was trained on, or null when it moved between machines or losses. */
export function trainedOn(record) {
  const legs = legsOf(record);
  return legs.length === 1 ? machine(legs[0].device) : null;
}

/**
 * "7 min on one H100", or, for a model trained in legs, each leg's characters, time, machine and loss: as parts for
 * appendProse, each number naming where in metrics.json it is (the model's entry under `unitId`).
 */
export function trainingTimeParts(record, unitId, { nameMachine = true } = {}) {
  const source = `metrics.json:models.${unitId}`;
  const loss = (leg) => (leg.sampled_words ? " with a sampled softmax" : "");
  if (!record.legs?.length) {
    return [[record.training_seconds, "duration", `${source}.training_seconds`], nameMachine ? ` on ${machine(record.trained_on)}` : ""];
  }
  if (record.legs.length === 1) {
    const [leg] = record.legs;
    return [[leg.seconds, "duration", `${source}.legs.0.seconds`], `${nameMachine ? ` on ${machine(leg.device)}` : ""}${loss(leg)}`];
  }
  return record.legs.flatMap((leg, index) => [
    index ? ", then " : "", [leg.characters, "millions", `${source}.legs.${index}.characters`], " in ",
    [leg.seconds, "duration", `${source}.legs.${index}.seconds`], ` on ${machine(leg.device)}${loss(leg)}`,
  ]);
}

/** The same as plain text. */
export function trainingTime(record, options) {
  return trainingTimeParts(record, "", options).map((part) => (typeof part === "string" ? part : FORMATS[part[1]](part[0]))).join("");
}
