// The vanishing gradient, unrolled. The network is drawn over the characters of a short text, one
// column per character: the input, each recurrent layer, the output. A cell of a layer's row is shaded
// by the norm of the gradient of the chosen output position's word score with respect to everything
// that layer hands on after that step (/api/unrolled, models/unrolled.py), on a logarithmic scale from
// the panel's largest norm down; the input row by the gradient at the character's embedding. The
// vanilla RNN stands beside a gated unit the reader picks. Hovering, tapping or focusing a column
// chooses the output position.

import * as api from "../api.js";
import { connectivityColour, textColourOn } from "../connectivity-colour.js";
import { formatPower } from "../format.js";
import { describeCharacter } from "../text-panels.js";
import { paintUnitColour } from "../units.js";

const d3 = window.d3;
// The example sentence's first this many characters; the server computes its last column ahead (app/answers.py).
const TEXT_CHARS = 60;
// The shading spans this many powers of ten below each panel's largest norm; anything weaker gets the darkest colour.
const DECADES = 6;
// Cells share the panel's width, at least MIN_CELL_PX wide so a character stays legible and a tap lands on its column (a
// narrower screen scrolls sideways), at most MAX_CELL_PX.
const MIN_CELL_PX = 14;
const MAX_CELL_PX = 22;
const ROW_PX = 22;
const LABEL_PX = 64;
const POINTER_DELAY_MS = 60;
// The "falls to" fraction each panel's caption reads out.
const SMALL_FRACTION = 0.01;
const KEY_STEPS = { ArrowRight: 1, ArrowLeft: -1, PageUp: -10, PageDown: 10 };

/** A norm as a fraction of the panel's largest, onto the colour band: 1 at the top, 10^-DECADES and less at the bottom. */
const toBand = (fraction) => Math.max(0, 1 + Math.log10(Math.max(fraction, 10 ** -DECADES)) / DECADES);

export async function render(element, { units, paper }) {
  const body = d3.select(element).select(".figure-body").text("");
  const vanilla = units.find((unit) => unit.model.unit === "rnn");
  const gated = units.filter((unit) => unit !== vanilla);
  if (!vanilla || gated.length === 0) {
    body.append("p").attr("class", "notice").text("This figure needs the vanilla RNN and a gated unit among the served models.");
    return;
  }
  const text = paper.connectivity.example_text.slice(0, TEXT_CHARS);
  let position = text.length - 1;
  let shown = [vanilla, gated[0]];
  const norms = new Map(); // `${unit id} ${position}` -> the answer's row

  const controls = body.append("div").attr("class", "controls");
  const choice = controls.append("label");
  choice.append("span").text("Beside the vanilla RNN");
  const select = choice.append("select").attr("name", "gated-unit");
  select.selectAll("option").data(gated).join("option").attr("value", (unit) => unit.id).text((unit) => unit.name);
  renderScale(controls.append("div").attr("class", "legend vanishing-legend").node());
  const status = body.append("p").attr("class", "status").attr("role", "status").attr("aria-live", "polite");
  const grid = body.append("div").attr("class", "vanishing-panels");

  const panels = grid.selectAll("section").data([0, 1]).join("section").attr("class", "vanishing-panel");
  const titles = panels.append("p").attr("class", "panel-title");
  titles.append("span").attr("class", "unit-swatch").attr("aria-hidden", "true");
  titles.append("span").attr("class", "unit-name");
  const scrollers = panels.append("div").attr("class", "table-scroll");
  const sliders = scrollers.append("div").attr("class", "unrolled")
    .attr("role", "slider").attr("tabindex", (slot) => (slot === 0 ? 0 : -1))
    .attr("aria-valuemin", 0).attr("aria-valuemax", text.length - 1)
    .attr("aria-label", (slot) => (slot === 0 ? "Output position of both panels; arrow keys move it" : "Output position"));
  panels.append("p").attr("class", "vanishing-caption");

  const key = (unit, at) => `${unit.id} ${at}`;
  const cellWidth = () => Math.max(MIN_CELL_PX, Math.min(MAX_CELL_PX, Math.floor((grid.node().clientWidth - LABEL_PX) / text.length)));

  async function fetchRow(unit, at) {
    if (norms.has(key(unit, at))) return norms.get(key(unit, at));
    const answer = await api.unrolled({ text, model: unit.id, positions: [at] });
    const row = { ...answer.rows[0], layersFound: answer.layers_found };
    norms.set(key(unit, at), row);
    return row;
  }

  function paint() {
    panels.each(function paintPanel(slot) {
      const unit = shown[slot];
      paintUnitColour(this, unit);
      const row = norms.get(key(unit, position)) ?? null;
      const panel = d3.select(this).attr("data-unit", unit.id).classed("stale", row === null);
      panel.select(".unit-name").text(unit.name);
      drawUnrolled(panel.select(".unrolled").node(), { text, position, row, unit, cellPx: cellWidth() });
      panel.select(".vanishing-caption").text(row === null ? "computing…" : summary(unit, row, text, position));
    });
    sliders.attr("aria-valuenow", position).attr("aria-valuetext", `position ${position}, ${describeCharacter(text, position)}; `
      + shown.map((unit) => {
        const row = norms.get(key(unit, position));
        return row ? summary(unit, row, text, position) : `${unit.name} computing`;
      }).join("; "));
    // Keeps the chosen column in view where the panels scroll sideways (a phone).
    const cellPx = cellWidth();
    const left = LABEL_PX + position * cellPx;
    scrollers.each(function follow() {
      if (left < this.scrollLeft + LABEL_PX || left + cellPx > this.scrollLeft + this.clientWidth) this.scrollLeft = left - this.clientWidth / 2;
    });
  }

  let requested = 0;
  async function choose(at) {
    position = Math.max(0, Math.min(text.length - 1, at));
    const request = ++requested;
    paint();
    try {
      await Promise.all(shown.map((unit) => fetchRow(unit, position)));
      status.text("").classed("error", false);
    } catch (error) {
      status.text(`Could not compute the gradient norms: ${error.message}`).classed("error", true);
    }
    if (request === requested) paint();
  }

  let pointerTimer = null;
  const columnOf = (event) => event.target.closest?.("[data-step]")?.dataset.step;
  sliders.on("pointermove", (event) => {
    const step = columnOf(event);
    if (step === undefined || Number(step) === position) return;
    clearTimeout(pointerTimer);
    pointerTimer = setTimeout(() => choose(Number(step)), POINTER_DELAY_MS);
  }).on("click", (event) => {
    const step = columnOf(event);
    if (step !== undefined) choose(Number(step));
  }).on("keydown", (event) => {
    let target = null;
    if (event.key in KEY_STEPS) target = position + KEY_STEPS[event.key];
    else if (event.key === "Home") target = 0;
    else if (event.key === "End") target = text.length - 1;
    if (target === null) return;
    event.preventDefault();
    choose(target);
  });
  select.on("change", () => {
    shown = [vanilla, gated.find((unit) => unit.id === select.property("value"))];
    choose(position);
  });

  let lastWidth = grid.node().clientWidth;
  new ResizeObserver(() => {
    if (grid.node().clientWidth === lastWidth) return;
    lastWidth = grid.node().clientWidth;
    paint();
  }).observe(grid.node());
  await choose(position);
}

/**
 * One panel: the unrolled network as a grid of cells, bottom row the input characters, then each layer, top row the
 * output word at the chosen position. `row` is null while its norms are computed: the last ones stay, dimmed.
 */
function drawUnrolled(container, { text, position, row, unit, cellPx }) {
  // The last norms drawn stay, dimmed, until these arrive; never another unit's.
  if (container.dataset.unit !== unit.id) {
    container.__painted = null;
    d3.select(container).selectAll("*").remove();
    container.dataset.unit = unit.id;
  }
  const shown = row ?? container.__painted ?? null;
  const layerCount = shown ? shown.layers.length : unit.model.num_layers;
  // A plug-in unit that shows no layers of its own is drawn as one row, the whole unit (models/unrolled.py).
  const layerLabel = (layer) => (shown && !shown.layersFound ? "unit" : `layer ${layer}`);
  const rows = [{ id: "output", label: "output" }, ...d3.range(layerCount, 0, -1).map((layer) => ({ id: `layer-${layer}`, label: layerLabel(layer) })),
    { id: "input", label: "input" }];
  const width = LABEL_PX + text.length * cellPx;
  const height = rows.length * ROW_PX;
  const svg = d3.select(container).selectAll("svg").data([null]).join("svg")
    .attr("width", width).attr("height", height).attr("viewBox", `0 0 ${width} ${height}`).attr("aria-hidden", "true");
  svg.selectAll("text.row-label").data(rows).join("text").attr("class", "row-label")
    .attr("x", LABEL_PX - 6).attr("y", (item, index) => index * ROW_PX + ROW_PX / 2).attr("text-anchor", "end")
    .attr("dominant-baseline", "central").text((item) => item.label);
  if (shown === null) return;
  container.__painted = shown;
  const peak = d3.max([...shown.layers.flat(), ...shown.input]) || 1;
  const values = (id) => (id === "input" ? shown.input : shown.layers[Number(id.split("-")[1]) - 1]);
  const cells = rows.filter((item) => item.id !== "output").flatMap((item, index) => Array.from(text, (char, step) => ({
    row: item.id, rowIndex: index + 1, step, char, norm: step <= shown.position ? values(item.id)[step] : null,
  })));
  const groups = svg.selectAll("g.cell").data(cells, (cell) => `${cell.row} ${cell.step}`).join((enter) => {
    const group = enter.append("g").attr("class", "cell");
    group.append("rect").attr("height", ROW_PX - 2);
    group.append("text").attr("y", ROW_PX / 2 - 1).attr("text-anchor", "middle").attr("dominant-baseline", "central");
    return group;
  })
    .attr("transform", (cell) => `translate(${LABEL_PX + cell.step * cellPx},${cell.rowIndex * ROW_PX})`)
    .attr("data-row", (cell) => cell.row).attr("data-step", (cell) => cell.step)
    .attr("data-norm", (cell) => (cell.norm === null ? "" : cell.norm))
    .classed("future", (cell) => cell.step > position);
  // Inline fills, as the stylesheet's blank-cell colour would override a presentation attribute.
  groups.select("rect").attr("width", cellPx - 1)
    .style("fill", (cell) => (cell.norm === null ? null : connectivityColour(toBand(cell.norm / peak))));
  groups.select("text").attr("x", (cellPx - 1) / 2).text((cell) => (cell.row === "input" ? cell.char : ""))
    .style("fill", (cell) => (cell.norm === null ? null : textColourOn(connectivityColour(toBand(cell.norm / peak)))));
  // Columns are chosen anywhere on them: the output row's cells too.
  svg.selectAll("g.output").data(Array.from(text, (char, step) => step)).join((enter) => {
    const group = enter.append("g").attr("class", "output");
    group.append("rect").attr("height", ROW_PX - 2);
    return group;
  }).attr("transform", (step) => `translate(${LABEL_PX + step * cellPx},0)`).attr("data-step", (step) => step)
    .classed("selected", (step) => step === position);
  svg.selectAll("text.output-word").data([shown]).join("text").attr("class", "output-word")
    .attr("x", LABEL_PX + position * cellPx + cellPx / 2).attr("y", ROW_PX / 2 - 1)
    .attr("text-anchor", position > text.length / 2 ? "end" : "start").attr("dominant-baseline", "central")
    .text(row ? `“${row.word}”` : "");
  svg.selectAll("rect.column").data([position]).join("rect").attr("class", "column")
    .attr("x", LABEL_PX + position * cellPx - 1).attr("y", 0).attr("width", cellPx + 1).attr("height", height);
}

/** "Vanilla RNN, top layer: 1 % of its largest gradient norm from 6 characters back" (or: never that small). */
function summary(unit, row, text, position) {
  const top = row.layers.at(-1);
  const peak = d3.max(top) || 1;
  const back = d3.range(position, -1, -1).find((step) => top[step] / peak < SMALL_FRACTION);
  const word = `for “${row.word}” at ${describeCharacter(text, position)}`;
  const which = row.layersFound ? "the top layer's" : "the unit's";
  if (back === undefined) {
    return `${unit.name}, ${word}: ${which} gradient norm stays above ${SMALL_FRACTION * 100} % of its largest over all `
      + `${position + 1} characters (smallest ${formatPower(d3.min(top.slice(0, position + 1)) / peak)} of it)`;
  }
  return `${unit.name}, ${word}: ${which} gradient norm first falls below ${SMALL_FRACTION * 100} % of its largest `
    + `${position - back} characters back, and is ${formatPower(top[0] / peak)} of it at the first character`;
}

/** The colour bar of the logarithmic shading, ticked at each power of ten. */
function renderScale(element) {
  const width = 150;
  const inset = 10;
  const container = d3.select(element);
  container.append("span").text("weak");
  const svg = container.append("svg").attr("width", width + 2 * inset).attr("height", 24).attr("role", "img")
    .attr("aria-label", `colour scale, logarithmic: from 10 to the power minus ${DECADES} to 1 of the panel's largest gradient norm`);
  const gradientId = `vanishing-gradient-${Math.random().toString(36).slice(2)}`;
  const gradient = svg.append("defs").append("linearGradient").attr("id", gradientId);
  d3.range(0, 1.0001, 0.1).forEach((stop) => gradient.append("stop").attr("offset", `${stop * 100}%`).attr("stop-color", connectivityColour(stop)));
  svg.append("rect").attr("x", inset).attr("width", width).attr("height", 10).attr("rx", 2).attr("fill", `url(#${gradientId})`);
  svg.append("g").attr("class", "legend-ticks").selectAll("text").data(d3.range(-DECADES, 1, 2)).join("text")
    .attr("x", (power) => inset + toBand(10 ** power) * width).attr("y", 23).attr("text-anchor", "middle")
    .text((power) => (power === 0 ? "1" : formatPower(10 ** power).replace("1.0 × ", "")));
  container.append("span").text("strong");
  container.append("span").attr("class", "legend-note").text("gradient norm, as a fraction of the panel's largest (log scale)");
}
