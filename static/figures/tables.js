// Table 1: configurations and parameter counts, then test results, ours beside the paper's where
// the paper trained the same unit.

import { formatCount, formatLoss, formatPercent, metricsFor } from "../format.js";

const d3 = window.d3;
const PAPER_LABEL = "paper, text8";

export function render(element, { units, metrics, paper }) {
  const body = d3.select(element).select(".figure-body").text("");

  const configurations = units.flatMap((unit) => {
    const ours = unit.model;
    const row = { name: unit.name, source: "ours", layers: ours.num_layers, depth: ours.depth, width: ours.hidden_size, parameters: ours.parameters };
    if (unit.paperName === null) return [row];
    const theirs = paper.models[unit.paperName];
    return [row, { name: unit.paperName, source: PAPER_LABEL, layers: theirs.layers, depth: theirs.depth ?? 1, width: theirs.units, parameters: theirs.params }];
  });
  const total = (parameters) => parameters.embedding + parameters.recurrent + parameters.dense;
  table(body, "Model configurations and parameter counts",
    ["model", "source", "layers", "depth", "width", "embedding", "recurrent", "output layer", "total"],
    configurations.map((row) => ({
      paper: row.source !== "ours",
      cells: [row.name, row.source, row.layers, row.depth, row.width,
        formatCount(row.parameters.embedding), formatCount(row.parameters.recurrent), formatCount(row.parameters.dense),
        formatCount(total(row.parameters))],
    })));

  const results = units.flatMap((unit) => {
    const record = metricsFor(metrics, unit.id);
    const crossEntropy = record?.test.cross_entropy ?? unit.model.metrics?.test_cross_entropy ?? null;
    const accuracy = record?.test.accuracy ?? unit.model.metrics?.test_accuracy ?? null;
    const row = { paper: false, cells: [unit.name, "ours", formatOrDash(crossEntropy, formatLoss), formatOrDash(accuracy, formatPercent)] };
    if (unit.paperName === null) return [row];
    const theirs = paper.test_results[unit.paperName];
    return [row, { paper: true, cells: [unit.paperName, PAPER_LABEL, formatLoss(theirs.cross_entropy), formatPercent(theirs.accuracy)] }];
  });
  table(body, "Test results", ["model", "source", "cross-entropy (nats per character)", "accuracy (top 1, every character)"], results);
}

function table(parent, caption, header, rows) {
  const scroll = parent.append("div").attr("class", "table-scroll").attr("role", "region").attr("aria-label", caption);
  const element = scroll.append("table").attr("class", "data");
  element.append("caption").text(caption);
  element.append("thead").append("tr").selectAll("th").data(header).join("th").attr("scope", "col").text((cell) => cell);
  const bodyRows = element.append("tbody").selectAll("tr").data(rows).join("tr").classed("paper", (row) => row.paper);
  bodyRows.selectAll("td").data((row) => row.cells).join("td")
    .attr("class", (cell, index) => (index < 2 ? "text" : null))
    .text((cell) => cell);
}

function formatOrDash(value, format) {
  return value === null || value === undefined ? "–" : format(value);
}
