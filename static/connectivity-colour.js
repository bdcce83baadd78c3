// The display rule of the original article (paper.json, connectivity.display): a row divided by its
// maximum, mapped onto the middle band of viridis so neither end is too dark or too pale to read.

const d3 = window.d3;
const BAND_LOW = 0.29;
const BAND_HIGH = 2 / 3;

export function connectivityColour(normalised) {
  return d3.interpolateViridis(BAND_LOW + normalised * (BAND_HIGH - BAND_LOW));
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

/** A horizontal colour bar from "weak" to "strong" with a short explanation. */
export function renderLegend(element, label) {
  const width = 140;
  const height = 10;
  const container = d3.select(element).append("div").attr("class", "legend");
  container.append("span").text("weak");
  const svg = container.append("svg").attr("width", width).attr("height", height).attr("role", "img")
    .attr("aria-label", "colour scale from weak to strong connectivity");
  const gradientId = `legend-gradient-${Math.random().toString(36).slice(2)}`;
  const gradient = svg.append("defs").append("linearGradient").attr("id", gradientId);
  d3.range(0, 1.0001, 0.1).forEach((stop) => {
    gradient.append("stop").attr("offset", `${stop * 100}%`).attr("stop-color", connectivityColour(stop));
  });
  svg.append("rect").attr("width", width).attr("height", height).attr("rx", 2).attr("fill", `url(#${gradientId})`);
  container.append("span").text("strong");
  const note = container.append("span").attr("class", "legend-note");
  note.text(label);
  return note;
}
