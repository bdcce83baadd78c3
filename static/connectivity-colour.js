// The display rule of the original article (paper.json, connectivity.display): a row divided by its
// maximum, mapped onto the middle band of viridis so neither end is too dark or too pale to read.

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

export function connectivityColour(normalised, shading = "linear") {
  return d3.interpolateViridis(BAND_LOW + shadingById(shading).toBand(normalised) * (BAND_HIGH - BAND_LOW));
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
 * Divide each unit's row by a maximum: its own ("unit") or the largest over all units ("shared").
 * `rows` maps unit id to an array of raw values (or null while loading).
 */
export function normaliseRows(rows, scale) {
  const maxima = Object.fromEntries(Object.entries(rows).map(([id, row]) => [id, row ? d3.max(row) : 0]));
  const shared = d3.max(Object.values(maxima)) ?? 0;
  return Object.fromEntries(
    Object.entries(rows).map(([id, row]) => {
      const maximum = scale === "shared" ? shared : maxima[id];
      return [id, row ? row.map((value) => (maximum > 0 ? value / maximum : 0)) : null];
    }),
  );
}

/**
 * A horizontal colour bar from "weak" to "strong", ticked with the fractions of the maximum that
 * the shading puts there, and a short explanation; `update(shading, label)` redraws it.
 */
export function renderLegend(element, label) {
  const width = 150;
  const barHeight = 10;
  const height = barHeight + 14;
  const inset = 8; // room for the end ticks' labels
  const container = d3.select(element).append("div").attr("class", "legend");
  container.append("span").text("weak");
  const svg = container.append("svg").attr("width", width + 2 * inset).attr("height", height).attr("role", "img");
  const gradientId = `legend-gradient-${Math.random().toString(36).slice(2)}`;
  const gradient = svg.append("defs").append("linearGradient").attr("id", gradientId);
  d3.range(0, 1.0001, 0.1).forEach((stop) => {
    gradient.append("stop").attr("offset", `${stop * 100}%`).attr("stop-color", connectivityColour(stop));
  });
  svg.append("rect").attr("x", inset).attr("width", width).attr("height", barHeight).attr("rx", 2).attr("fill", `url(#${gradientId})`);
  const ticks = svg.append("g").attr("class", "legend-ticks");
  container.append("span").text("strong");
  const note = container.append("span").attr("class", "legend-note");

  const update = (shadingId, text) => {
    const shading = shadingById(shadingId);
    svg.attr("aria-label", `colour scale, ${shading.label}: from ${shading.ticks[0]} to 1 of the maximum`);
    ticks.selectAll("text").data(shading.ticks).join("text")
      .attr("x", (tick) => inset + shading.toBand(tick) * width).attr("y", height - 1).attr("text-anchor", "middle")
      .text((tick) => d3.format("~g")(tick));
    note.text(text);
  };
  update("linear", label);
  return { note, update };
}
