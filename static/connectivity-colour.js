// The display rule of the original article (paper.json, connectivity.display): a row divided by its
// maximum, mapped onto the middle band of viridis so neither end is too dark or too pale to read.
// Signed rows (integrated gradients) are divided by their largest magnitude and drawn on a diverging
// scale instead: red where a character lowers the word's score, blue where it raises it, white at 0.

const d3 = window.d3;
const BAND_LOW = 0.29;
const BAND_HIGH = 2 / 3;
// The logarithmic shading starts here, as a fraction of the row's maximum; anything weaker gets its darkest colour.
export const LOG_FLOOR = 1e-3;

/**
 * How a value (a fraction of the maximum) maps onto the colour band: the paper's linear mapping,
 * or square root or logarithmic ones that separate the many weak values it shows as one colour.
 * `ticks` are the legend's real values.
 */
export const SHADINGS = [
  { id: "linear", label: "linear (the paper's)", toBand: (value) => value, ticks: [0, 0.25, 0.5, 0.75, 1] },
  { id: "sqrt", label: "square root", toBand: (value) => Math.sqrt(value), ticks: [0, 0.01, 0.1, 0.25, 0.5, 1] },
  {
    id: "log",
    label: "logarithmic (from 10⁻³ of the maximum)",
    toBand: (value) => (Math.log10(Math.max(value, LOG_FLOOR)) - Math.log10(LOG_FLOOR)) / -Math.log10(LOG_FLOOR),
    ticks: [LOG_FLOOR, 0.01, 0.1, 1],
  },
];

export function shadingById(id) {
  return SHADINGS.find((shading) => shading.id === id) ?? SHADINGS[0];
}

export function connectivityColour(normalised, shading = "linear", signed = false) {
  if (signed) return d3.interpolateRdBu(0.5 + 0.5 * Math.sign(normalised) * shadingById(shading).toBand(Math.abs(normalised)));
  return d3.interpolateViridis(BAND_LOW + shadingById(shading).toBand(normalised) * (BAND_HIGH - BAND_LOW));
}

/** Where a value (a fraction of the maximum, signed or not) sits along a legend bar, from 0 (left) to 1. */
export function legendPosition(value, shading, signed) {
  const band = shadingById(shading).toBand(Math.abs(value));
  return signed ? 0.5 + 0.5 * Math.sign(value) * band : band;
}

/** The legend's ticks: the shading's own, mirrored around 0 (and thinned to fit) for signed values. */
export function legendTicks(shading, signed) {
  const ticks = shadingById(shading).ticks;
  if (!signed) return ticks;
  const inner = ticks.find((tick) => tick > 0 && tick < 1 && legendPosition(tick, shading, false) >= 0.4) ?? 0.5;
  return [-1, -inner, 0, inner, 1];
}

/** The legend's gradient stops [offset, colour], left to right. */
export function legendStops(signed) {
  return d3.range(0, 1.0001, 0.05).map((offset) => [offset, signed ? d3.interpolateRdBu(offset) : connectivityColour(offset)]);
}

/** WCAG 2 contrast ratio of two CSS colours. */
export function contrastRatio(first, second) {
  const [lighter, darker] = [relativeLuminance(first), relativeLuminance(second)].sort((a, b) => b - a);
  return (lighter + 0.05) / (darker + 0.05);
}

function relativeLuminance(colour) {
  const { r, g, b } = d3.rgb(colour);
  const linear = (channel) => {
    const value = channel / 255;
    return value <= 0.04045 ? value / 12.92 : ((value + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
}

/**
 * Black or white, whichever contrasts more with the background. Pure black: where the two are
 * closest (mid-band teal) black still reaches 4.5:1, a near-black would not.
 */
export function textColourOn(background) {
  return contrastRatio(background, "#000") >= contrastRatio(background, "#fff") ? "#000" : "#fff";
}

/**
 * Divide each unit's row by a maximum magnitude: its own ("unit") or the largest over all units ("shared").
 * `rows` maps unit id to an array of raw values (or null while loading); signed values keep their sign.
 */
export function normaliseRows(rows, scale) {
  const maxima = Object.fromEntries(Object.entries(rows).map(([id, row]) => [id, row ? d3.max(row, Math.abs) : 0]));
  const shared = d3.max(Object.values(maxima)) ?? 0;
  return Object.fromEntries(
    Object.entries(rows).map(([id, row]) => {
      const maximum = scale === "shared" ? shared : maxima[id];
      return [id, row ? row.map((value) => (maximum > 0 ? value / maximum : 0)) : null];
    }),
  );
}

/**
 * A horizontal colour bar from "weak" to "strong" (signed: from "lowers the score" through 0 to "raises
 * the score"), ticked with the fractions of the maximum that the shading puts there, and a short
 * explanation; `update(shading, label, signed)` redraws it.
 */
export function renderLegend(element, label) {
  const width = 150;
  const barHeight = 10;
  const height = barHeight + 14;
  const inset = 10; // room for the end ticks' labels
  const container = d3.select(element).append("div").attr("class", "legend");
  const low = container.append("span").attr("class", "legend-end");
  const svg = container.append("svg").attr("width", width + 2 * inset).attr("height", height).attr("role", "img");
  const gradientId = `legend-gradient-${Math.random().toString(36).slice(2)}`;
  const gradient = svg.append("defs").append("linearGradient").attr("id", gradientId);
  svg.append("rect").attr("x", inset).attr("width", width).attr("height", barHeight).attr("rx", 2).attr("fill", `url(#${gradientId})`);
  const ticks = svg.append("g").attr("class", "legend-ticks");
  const high = container.append("span").attr("class", "legend-end");
  const note = container.append("span").attr("class", "legend-note");

  const update = (shadingId, text, signed = false) => {
    const shading = shadingById(shadingId);
    const values = legendTicks(shadingId, signed);
    container.classed("signed", signed);
    low.text(signed ? "lowers the score" : "weak");
    high.text(signed ? "raises it" : "strong");
    svg.attr("aria-label", signed
      ? `colour scale, ${shading.label}: red lowers the word's score, blue raises it, from −1 to 1 of the largest magnitude`
      : `colour scale, ${shading.label}: from ${shading.ticks[0]} to 1 of the maximum`);
    gradient.selectAll("stop").data(legendStops(signed)).join("stop")
      .attr("offset", ([offset]) => `${offset * 100}%`).attr("stop-color", ([, colour]) => colour);
    ticks.selectAll("text").data(values).join("text")
      .attr("x", (tick) => inset + legendPosition(tick, shadingId, signed) * width).attr("y", height - 1).attr("text-anchor", "middle")
      .text((tick) => d3.format("~g")(tick).replace("-", "−"));
    note.text(text);
  };
  update("linear", label);
  return { note, update };
}
