// Figure 7: how training went. Above, training and validation loss per unit from the training log rows
// in metrics.json, against characters seen, mini-batches or wall-clock time, beside the paper's
// validation curve. Below, what more characters bought: test accuracy and reach at each snapshot of
// metrics.json's history, beside the paper's models after their two epochs.

import * as api from "../api.js";
import { formatDuration, formatLarge, formatLoss, formatPercent, metricsFor, trainedOn, trainingTime } from "../format.js";
import { drawLineChart, drawResponsive, legendItem } from "../line-chart.js";

const d3 = window.d3;
const AXES = [
  { key: "characters", label: "characters seen", format: d3.format("~s") },
  { key: "step", label: "mini-batches", format: d3.format("~s") },
  { key: "seconds", label: "wall-clock time", format: (seconds) => formatDuration(seconds) },
];
const MEASURES = [
  { key: "accuracy", label: "top-1 accuracy (test split)", paper: (paper, memory, unit) => paper.test_results[unit.paperName]?.accuracy },
  {
    key: "example_reach_10",
    label: "reach-10 (example sentence)",
    paper: (paper, memory, unit) => memory.units[unit.id]?.reach_10,
  },
];
const VALID_DASH = "5 3";
const PAPER_DASH = "1 3";

export async function render(element, { units: served, metrics, paper }) {
  const body = d3.select(element).select(".figure-body").text("");
  const units = served.filter((unit) => metricsFor(metrics, unit.id)?.training_curve?.length);
  if (units.length === 0) {
    body.append("p").attr("class", "notice").text("No training record: models/checkpoints/metrics.json is missing or has no training curve.");
    return;
  }
  const [paperTraining, paperMemory] = await Promise.all([api.loadPaperTraining(), api.loadPaperMemory()]);
  drawLosses(body, units, metrics, paperTraining);
  const historical = units.filter((unit) => metricsFor(metrics, unit.id).history?.length);
  if (historical.length > 0) drawHistory(body, historical, metrics, paper, paperMemory, paperTraining);
}

function drawLosses(body, units, metrics, paperTraining) {
  const controls = body.append("div").attr("class", "controls");
  const axisLabels = radioGroup(controls, "x-axis", "training-axis", AXES);
  const legend = body.append("div").attr("class", "chart-legend");
  units.forEach((unit) => legendItem(legend.node(), { colour: unit.colour, label: unit.name }));
  legendItem(legend.node(), { colour: "#555", label: "training" });
  legendItem(legend.node(), { colour: "#555", dash: VALID_DASH, label: "validation" });
  legendItem(legend.node(), { colour: "#555", dash: PAPER_DASH, label: "the paper's validation (600 units)" });
  const chart = body.append("div").attr("class", "chart loss-chart").node();
  const machinesNote = body.append("p").attr("class", "chart-note");
  // Time on one machine and on another adds up on the wall-clock axis, so it says which stretch ran where.
  const movedUnits = units.filter((unit) => trainedOn(metricsFor(metrics, unit.id)) === null);
  const machines = movedUnits.map((unit) => `${unit.name}: ${trainingTime(metricsFor(metrics, unit.id))}`);

  const draw = () => {
    const axis = checked(axisLabels, AXES);
    machinesNote.text(axis.key === "seconds" && machines.length ? `Training moved between machines, whose times add up here. ${machines.join("; ")}.` : "");
    const series = units.flatMap((unit) => {
      const curve = metricsFor(metrics, unit.id).training_curve;
      const train = curve.map((row) => ({ x: row[axis.key], y: row.train_loss }));
      const valid = curve.filter((row) => row.valid_loss !== null && row.valid_loss !== undefined)
        .map((row) => ({ x: row[axis.key], y: row.valid_loss }));
      return [
        { key: `${unit.id}-train`, unit, kind: "training", colour: unit.colour, className: "train", points: train },
        { key: `${unit.id}-valid`, unit, kind: "validation", colour: unit.colour, className: "valid", dash: VALID_DASH, markers: true, points: valid },
        ...paperSeries(unit, axis, paperTraining),
      ];
    });
    const allPoints = series.flatMap((item) => item.points);
    drawLineChart(chart, {
      series,
      x: { label: axis.label, domain: [0, d3.max(allPoints, (point) => point.x) || 1], format: axis.format },
      y: { label: "loss (nats per character)", domain: d3.extent(allPoints, (point) => point.y), format: d3.format(".1f") },
      ariaLabel: `Line chart of training and validation loss against ${axis.label}; focus and use the arrow keys to read values.`,
      describe: (xValue) => series.flatMap((item) => {
        const point = nearestAtOrBefore(item.points, xValue);
        return point ? [{ colour: item.colour, dash: item.dash, label: `${item.unit.name} ${item.kind}`, value: formatLoss(point.y) }] : [];
      }),
    });
  };
  axisLabels.select("input").on("change", draw);
  drawResponsive(chart, draw);
}

/** The paper's validation curve of the unit's paper counterpart, on the axes it can share: mini-batches, or characters. */
function paperSeries(unit, axis, paperTraining) {
  const curve = unit.paperName === null ? undefined : paperTraining.validation[unit.paperName];
  if (!curve || axis.key === "seconds") return [];
  const scale = axis.key === "characters" ? paperTraining.characters_per_step : 1;
  const points = curve.map(([step, loss]) => ({ x: step * scale, y: loss }));
  return [{ key: `${unit.id}-paper`, unit, kind: "paper's validation", colour: unit.colour, className: "paper", dash: PAPER_DASH, points }];
}

function drawHistory(body, units, metrics, paper, paperMemory, paperTraining) {
  const paperCharacters = paper.training.minibatches * paperTraining.characters_per_step;
  const controls = body.append("div").attr("class", "controls history-controls");
  const measureLabels = radioGroup(controls, "measure", "history-measure", MEASURES);
  const chart = body.append("div").attr("class", "chart history-chart").node();

  const draw = () => {
    const measure = checked(measureLabels, MEASURES);
    const series = units.flatMap((unit) => {
      const ours = {
        key: `${unit.id}-history`, unit, kind: "ours", colour: unit.colour, className: "history", markers: true,
        points: metricsFor(metrics, unit.id).history.map((point) => ({ x: point.characters, y: point[measure.key] })),
      };
      const theirs = unit.paperName === null ? undefined : measure.paper(paper, paperMemory, unit);
      if (theirs === undefined) return [ours];
      return [ours, {
        key: `${unit.id}-paper-final`, unit, kind: "the paper's, two epochs", colour: unit.colour, className: "paper-final",
        points: [{ x: paperCharacters, y: theirs }],
      }];
    });
    const allPoints = series.flatMap((item) => item.points);
    drawLineChart(chart, {
      series,
      y: { label: measure.label, domain: [0, d3.max(allPoints, (point) => point.y)], format: d3.format(".0%") },
      ariaLabel: `Line chart of ${measure.label} against characters seen, for each unit's snapshots and the paper's models; `
        + "focus and use the arrow keys to read values.",
      x: { label: "characters seen", domain: [0, d3.max(allPoints, (point) => point.x)], format: d3.format("~s"), name: formatLarge },
      describe: (xValue) => series.flatMap((item) => {
        const point = nearestAtOrBefore(item.points, xValue);
        return point ? [{ colour: item.colour, label: `${item.unit.name} (${item.kind})`, value: formatPercent(point.y) }] : [];
      }),
    });
  };
  measureLabels.select("input").on("change", draw);
  drawResponsive(chart, draw);
}

/** A fieldset of radio buttons, the first checked; returns the labels' selection. */
function radioGroup(controls, legendText, name, options) {
  const set = controls.append("fieldset").attr("class", "axis-toggle");
  set.append("legend").text(legendText);
  const labels = set.selectAll("label").data(options).join("label");
  labels.append("input").attr("type", "radio").attr("name", name).attr("value", (option) => option.key)
    .property("checked", (option, index) => index === 0);
  labels.append("span").text((option) => option.label);
  return labels;
}

function checked(labels, options) {
  return options.find((option) => option.key === labels.select("input:checked").property("value")) ?? options[0];
}

/** The last logged point at or before x: the value a reader would see on the line there. */
function nearestAtOrBefore(points, x) {
  const index = d3.bisector((point) => point.x).right(points, x) - 1;
  return index >= 0 ? points[index] : null;
}
