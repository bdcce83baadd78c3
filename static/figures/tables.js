// Table 1: configurations and parameter counts, then test results, ours beside the paper's where the paper
// trained the same unit. Accuracy is compared on the paper's count (every character, a word outside the vocabulary
// a miss), each of our numbers with its 95 % interval, drawn as a bar on one scale for every row; ours over words in
// the vocabulary only follows, which the paper did not publish. Every number names its source (data-source). The
// legend hides and shows a unit's rows, ours and the paper's.

import { appendNumber, appendProse, metricsFor } from "../format.js";
import { renderUnitLegend } from "../unit-toggles.js";

const d3 = window.d3;
const PAPER_LABEL = "paper, text8";
const BAR = { width: 96, height: 12, pad: 4 };

export function render(element, { units, metrics, paper }) {
  const body = d3.select(element).select(".figure-body").text("");
  const shownUnits = renderUnitLegend(body.append("div").attr("class", "chart-legend"), units, () => {
    const shown = shownUnits();
    body.selectAll("tbody tr").property("hidden", (row) => !shown.includes(row.unit));
  });

  const configurations = units.flatMap((unit) => {
    const ours = unit.model;
    const row = {
      unit, paper: false, name: unit.name, source: "ours", layers: ours.num_layers, depth: ours.depth, width: ours.hidden_size,
      parameters: ours.parameters, from: `api:models.${unit.id}`,
    };
    if (unit.paperName === null) return [row];
    const theirs = paper.models[unit.paperName];
    return [row, {
      unit, paper: true, name: unit.paperName, source: PAPER_LABEL, layers: theirs.layers, depth: theirs.depth ?? 1, width: theirs.units,
      parameters: theirs.params, from: `paper.json:models.${unit.paperName}`,
    }];
  });
  const total = (parameters) => parameters.embedding + parameters.recurrent + parameters.dense;
  const parameterPath = (row, part) => `${row.from}.${row.paper ? "params" : "parameters"}.${part}`;
  table(body, "Model configurations and parameter counts",
    ["model", "source", "layers", "depth", "width", "embedding", "recurrent", "output layer", "total"],
    configurations.map((row) => ({
      unit: row.unit,
      paper: row.paper,
      cells: [row.name, row.source, row.layers, row.depth, row.width,
        ...["embedding", "recurrent", "dense"].map((part) => (cell) => appendNumber(cell, row.parameters[part], "count", parameterPath(row, part))),
        (cell) => appendNumber(cell, total(row.parameters), "count", "derived")],
    })));

  // One scale for every bar, so the intervals and the paper's points compare at a glance.
  const records = units.map((unit) => ({ unit, record: metricsFor(metrics, unit.id) })).filter(({ record }) => record?.test);
  const everyCharacter = records.map(({ record }) => record.test.accuracy_every_character).filter((value) => value !== undefined);
  const extent = d3.extent([
    ...everyCharacter,
    ...records.flatMap(({ record }) => record.test.accuracy_every_character_ci95 ?? []),
    ...units.filter((unit) => unit.paperName !== null).map((unit) => paper.test_results[unit.paperName].accuracy),
  ]);
  const scale = d3.scaleLinear().domain(extent[0] === undefined ? [0, 1] : extent).nice().range([BAR.pad, BAR.width - BAR.pad]);

  const results = units.flatMap((unit) => {
    const record = metricsFor(metrics, unit.id);
    const test = record?.test ?? {};
    const path = `metrics.json:models.${unit.id}.test`;
    const tested = test.sequences
      ? (cell) => appendProse(cell, [`${record.corpus?.name ?? "our"} test split, `, [test.sequences, "count", `${path}.sequences`], " sequences"])
      : "–";
    const row = {
      unit,
      paper: false,
      cells: [unit.name, "ours", tested,
        (cell) => withInterval(cell, test.cross_entropy, test.cross_entropy_ci95, "nats", `${path}.cross_entropy`),
        (cell) => withInterval(cell, test.accuracy_every_character, test.accuracy_every_character_ci95, "percent", `${path}.accuracy_every_character`, scale, unit.colour),
        (cell) => withInterval(cell, test.accuracy, test.accuracy_ci95, "percent", `${path}.accuracy`)],
    };
    if (unit.paperName === null) return [row];
    const theirs = paper.test_results[unit.paperName];
    const from = `paper.json:test_results.${unit.paperName}`;
    return [row, {
      unit,
      paper: true,
      cells: [unit.paperName, PAPER_LABEL, "text8 test split",
        (cell) => withInterval(cell, theirs.cross_entropy, null, "nats", `${from}.cross_entropy`),
        (cell) => withInterval(cell, theirs.accuracy, null, "percent", `${from}.accuracy`, scale, unit.colour),
        "not published"],
    }];
  });
  table(body, "Test results, each on its own corpus's test split",
    ["model", "source", "tested on", "cross-entropy (nats per character, real words)", "top-1 accuracy, every character (the paper's count), with its 95 % interval",
      "top-1 accuracy, words in the vocabulary only"],
    results, 3);
}

/** A number, its 95 % interval under it, and (given a scale) the interval drawn as a bar with the number as a dot. */
function withInterval(cell, value, interval, format, source, scale, colour) {
  if (value === null || value === undefined) {
    cell.text("–");
    return;
  }
  appendNumber(cell, value, format, source);
  if (interval) {
    appendNumber(cell.append("span").attr("class", "interval table-interval"), interval, format === "percent" ? "interval" : "nats_interval", `${source}_ci95`);
  }
  if (!scale) return;
  const bar = cell.append("svg").attr("class", "error-bar").attr("width", BAR.width).attr("height", BAR.height).attr("aria-hidden", "true");
  bar.append("line").attr("class", "axis-line").attr("x1", 0).attr("x2", BAR.width).attr("y1", BAR.height / 2).attr("y2", BAR.height / 2);
  if (interval) {
    bar.append("line").attr("stroke", colour).attr("x1", scale(interval[0])).attr("x2", scale(interval[1]))
      .attr("y1", BAR.height / 2).attr("y2", BAR.height / 2);
  }
  bar.append("circle").attr("r", 3.5).attr("cx", scale(value)).attr("cy", BAR.height / 2).attr("fill", colour);
}

function table(parent, caption, header, rows, textColumns = 2) {
  // Focusable, so that a keyboard can scroll a table wider than a phone.
  const scroll = parent.append("div").attr("class", "table-scroll").attr("role", "region").attr("aria-label", caption).attr("tabindex", 0);
  const element = scroll.append("table").attr("class", "data");
  element.append("caption").text(caption);
  element.append("thead").append("tr").selectAll("th").data(header).join("th").attr("scope", "col").text((cell) => cell);
  const bodyRows = element.append("tbody").selectAll("tr").data(rows).join("tr").classed("paper", (row) => row.paper)
    .attr("data-unit", (row) => row.unit.id);
  bodyRows.selectAll("td").data((row) => row.cells).join("td")
    .attr("class", (cell, index) => (index < textColumns ? "text" : null))
    .each(function fill(cell) {
      if (typeof cell === "function") cell(d3.select(this));
      else d3.select(this).text(cell);
    });
}
