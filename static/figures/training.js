// Figure 7: how training went. Above, training and validation loss per unit from the training log rows in
// metrics.json, against characters seen, mini-batches or wall-clock time, beside the paper's validation curve;
// a tick marks where a unit switched to a sampled softmax, and a note says where and what it did to the losses.
// Below, what more characters bought: top-1 test accuracy (every character) and reach at each snapshot of
// metrics.json's history (served by /api/models), beside the paper's models after their two epochs where it
// published the measure. Each chart's legend hides and shows a unit's lines.

import * as api from "../api.js";
import {
  appendProse, formatCount, formatDuration, formatLarge, formatLoss, formatPercent, formatTick, legsOf, metricsFor, trainedOn, trainingTimeParts,
} from "../format.js";
import { drawLineChart, drawResponsive, legendItem, pointAt } from "../line-chart.js";
import { renderUnitLegend } from "../unit-toggles.js";

const d3 = window.d3;
const HOUR = 3600;
const AXES = [
  { key: "characters", label: "characters seen", format: formatTick, name: formatLarge },
  { key: "step", label: "mini-batches", format: formatTick, name: formatCount },
  { key: "seconds", label: "wall-clock time", format: (seconds) => `${Math.round(seconds / HOUR)} h`, name: formatDuration, hours: true },
];
const MEASURES = [
  {
    key: "accuracy_every_character",
    label: "top-1 accuracy, every character (test split)",
    paper: (paper, memory, unit) => paper.test_results[unit.paperName]?.accuracy,
  },
  // Ours only: the paper counted every character.
  { key: "accuracy", label: "top-1 accuracy, words in the vocabulary only (test split)", paper: () => undefined },
  { key: "reach_10", label: "reach-10 (test sample)", paper: () => undefined },
  { key: "example_reach_10", label: "reach-10 (example sentence)", paper: (paper, memory, unit) => memory.units[unit.id]?.reach_10 },
];
const VALID_DASH = "5 3";
const PAPER_DASH = "1 3";
// The paper's validation curve "stays near" its level while within this many nats of its second logged point.
const PLATEAU_NATS = 0.5;
// A plateau worth a sentence: at least this many mini-batches.
const LONG_PLATEAU_STEPS = 1000;
const MAX_HOUR_TICKS = 8;
// How far past a switch to sampled softmax the note follows the validation loss, in logged points.
const POINTS_AFTER_SWITCH = 3;

export async function render(element, { units: served, metrics, paper }) {
  const body = d3.select(element).select(".figure-body").text("");
  const units = served.filter((unit) => metricsFor(metrics, unit.id)?.training_curve?.length);
  if (units.length === 0) {
    body.append("p").attr("class", "notice").text("No training record: models/checkpoints/metrics.json is missing or has no training curve.");
    return;
  }
  const [paperTraining, paperMemory] = await Promise.all([api.loadPaperTraining(), api.loadPaperMemory()]);
  drawLosses(body, units, metrics, paperTraining);
  const historical = units.filter((unit) => unit.model.history?.length);
  if (historical.length > 0) drawHistory(body, historical, paper, paperMemory, paperTraining);
}

/** Where a unit switched to a sampled softmax after starting with the full one: {characters, seconds}, or null. */
function samplingSwitch(record) {
  const legs = legsOf(record);
  const index = legs.findIndex((leg) => leg.sampled_words);
  if (index <= 0) return null;
  const before = legs.slice(0, index);
  return { characters: d3.sum(before, (leg) => leg.characters), seconds: d3.sum(before, (leg) => leg.seconds) };
}

/** The training curve's row at the switch: the first logged at or after it. */
function rowAtSwitch(curve, switched) {
  return curve.find((row) => row.characters >= switched.characters) ?? null;
}

function drawLosses(body, units, metrics, paperTraining) {
  const controls = body.append("div").attr("class", "controls");
  const axisLabels = radioGroup(controls, "x-axis", "training-axis", AXES);
  const zoomLabel = controls.append("label");
  const zoom = zoomLabel.append("input").attr("type", "checkbox").attr("name", "loss-zoom");
  zoomLabel.append("span").text("zoom in on the loss where the units differ");
  const legend = body.append("div").attr("class", "chart-legend");
  const shownUnits = renderUnitLegend(legend, units, () => draw());
  const legendNotes = legend.append("span").attr("class", "legend-notes");
  const chart = body.append("div").attr("class", "chart loss-chart").node();
  const machinesNote = body.append("p").attr("class", "chart-note machines-note");
  appendProse(body.append("p").attr("class", "chart-note switch-note"), switchesInWords(units, metrics));
  appendProse(body.append("p").attr("class", "chart-note paper-note"), paperCurveInWords(units, paperTraining));
  // Time on one machine and on another adds up on the wall-clock axis, so it says which stretch ran where.
  const movedUnits = units.filter((unit) => trainedOn(metricsFor(metrics, unit.id)) === null);
  const machines = movedUnits.flatMap((unit, index) => [index ? "; " : "", `${unit.name}: `, ...trainingTimeParts(metricsFor(metrics, unit.id), unit.id)]);

  const draw = () => {
    const axis = checked(axisLabels, AXES);
    machinesNote.text("");
    if (axis.key === "seconds" && machines.length) appendProse(machinesNote, ["Training moved between machines, whose times add up here. ", ...machines, "."]);
    const shown = shownUnits();
    const series = shown.flatMap((unit) => {
      const record = metricsFor(metrics, unit.id);
      const curve = record.training_curve;
      const switched = samplingSwitch(record);
      const train = curve.map((row) => ({ x: row[axis.key], y: row.train_loss, sampled: switched !== null && row.characters > switched.characters }));
      const valid = curve.filter((row) => row.valid_loss !== null && row.valid_loss !== undefined)
        .map((row) => ({ x: row[axis.key], y: row.valid_loss }));
      return [
        { key: `${unit.id}-train`, unit, kind: "training", colour: unit.colour, className: "train", points: train },
        { key: `${unit.id}-valid`, unit, kind: "validation", colour: unit.colour, className: "valid", dash: VALID_DASH, markers: true, points: valid },
        ...paperSeries(unit, axis, paperTraining),
      ];
    });
    const marks = shown.flatMap((unit) => {
      const record = metricsFor(metrics, unit.id);
      const switched = samplingSwitch(record);
      const row = switched && rowAtSwitch(record.training_curve, switched);
      return row ? [{ x: row[axis.key], y: row.train_loss, colour: unit.colour }] : [];
    });
    legendNotes.text("");
    legendItem(legendNotes.node(), { colour: "#555", label: "training" });
    legendItem(legendNotes.node(), { colour: "#555", dash: VALID_DASH, label: "validation" });
    if (series.some((item) => item.className === "paper")) {
      legendItem(legendNotes.node(), { colour: "#555", dash: PAPER_DASH, label: "the paper's validation (text8)" });
    }
    const allPoints = series.flatMap((item) => item.points);
    const xMax = d3.max(allPoints, (point) => point.x) || 1;
    drawLineChart(chart, {
      series,
      marks,
      x: { label: axis.label, domain: [0, xMax], format: axis.format, name: axis.name, ticks: axis.hours ? hourTicks(xMax) : undefined },
      y: { label: "loss (nats per character)", domain: zoom.property("checked") ? zoomedDomain(series) : d3.extent(allPoints, (point) => point.y), format: d3.format(".1f") },
      ariaLabel: `Line chart of training and validation loss against ${axis.label}; focus and use the arrow keys to read values.`,
      describe: (xValue) => series.flatMap((item) => {
        const point = pointAt(item.points, xValue);
        const kind = point?.sampled ? "training (sampled softmax)" : item.kind;
        return point ? [{ colour: item.colour, dash: item.dash, label: `${item.unit.name} ${kind}`, value: formatLoss(point.y) }] : [];
      }),
    });
  };
  axisLabels.select("input").on("change", draw);
  zoom.on("change", draw);
  drawResponsive(chart, draw);
}

/** Whole hours, as many as fit: 1, 2, 5, 10, … hours apart. */
function hourTicks(maxSeconds) {
  const hours = maxSeconds / HOUR;
  const step = [1, 2, 5, 10, 20, 50, 100].find((candidate) => hours / candidate <= MAX_HOUR_TICKS) ?? Math.ceil(hours / MAX_HOUR_TICKS);
  return d3.range(0, Math.floor(hours / step) * step + 1, step).map((hour) => hour * HOUR);
}

/** The loss axis where our units differ: from the lowest of our losses to the highest in the second half of training. */
function zoomedDomain(series) {
  const ours = series.filter((item) => item.className !== "paper");
  const xMax = d3.max(ours, (item) => d3.max(item.points, (point) => point.x));
  const late = ours.flatMap((item) => item.points.filter((point) => point.x >= xMax / 2).map((point) => point.y));
  return [d3.min(ours, (item) => d3.min(item.points, (point) => point.y)), d3.max(late)];
}

/** Where each unit switched to a sampled softmax, and its validation loss before and after, in words (parts for appendProse). */
function switchesInWords(units, metrics) {
  const parts = units.flatMap((unit) => {
    const record = metricsFor(metrics, unit.id);
    const legs = legsOf(record);
    if (legs[0].sampled_words) return [[`the ${unit.name} used it from its first step`]];
    const switched = samplingSwitch(record);
    if (!switched) return [];
    const source = `metrics.json:models.${unit.id}`;
    const valid = record.training_curve.map((row, index) => ({ ...row, index })).filter((row) => row.valid_loss !== null && row.valid_loss !== undefined);
    const before = valid.filter((row) => row.characters <= switched.characters).at(-1);
    const after = valid.filter((row) => row.characters > switched.characters).slice(0, POINTS_AFTER_SWITCH);
    const where = legs.findIndex((leg) => leg.sampled_words) === 1 ? `${source}.legs.0.characters` : "derived";
    const range = (rows) => {
      const [lowest, highest] = [d3.least(rows, (row) => row.valid_loss), d3.greatest(rows, (row) => row.valid_loss)];
      const at = (row) => [row.valid_loss, "nats", `${source}.training_curve.${row.index}.valid_loss`];
      return [at(lowest), " to ", at(highest)];
    };
    return [[
      `the ${unit.name} switched after `, [switched.characters, "millions", where], " characters",
      ...(before && after.length
        ? [", its validation loss ", [before.valid_loss, "nats", `${source}.training_curve.${before.index}.valid_loss`], " before and ",
          ...(after.length === 1 ? [[after[0].valid_loss, "nats", `${source}.training_curve.${after[0].index}.valid_loss`], " at the next point"]
            : [...range(after), ` over the next ${after.length} points`])]
        : []),
    ]];
  });
  if (parts.length === 0) return [];
  return ["Sampled softmax (a tick on the training line where a unit switched): ", ...parts.flatMap((part, index) => [index ? "; " : "", ...part]),
    ". After the switch the thin line is the sampled loss, not the full cross-entropy the validation line measures."];
}

/** The paper's curves: how its mini-batches become characters, and a long flat start where there is one (parts for appendProse). */
function paperCurveInWords(units, paperTraining) {
  const names = units.filter((unit) => paperTraining.validation[unit.paperName]).map((unit) => unit.paperName);
  if (names.length === 0) return [];
  const source = "paper/training.json";
  const plateaus = names.flatMap((name) => {
    const curve = paperTraining.validation[name];
    const level = curve[1][1];
    const end = curve.findIndex(([, loss], index) => index > 0 && loss < level - PLATEAU_NATS);
    const steps = end > 0 ? curve[end - 1][0] : 0;
    return steps >= LONG_PLATEAU_STEPS
      ? ["; the paper's ", name, " curve stays near ", [level, "nats", `${source}:validation.${name}.1.1`], " nats for its first ",
        [steps, "count", `${source}:validation.${name}.${end - 1}.0`], " mini-batches (", [steps * paperTraining.characters_per_step, "large", "derived"],
        " characters) before it falls, which the paper does not explain"]
      : [];
  });
  return ["The paper's mini-batches are turned into characters at ", [paperTraining.characters_per_step, "count", `${source}:characters_per_step`],
    " characters each", ...plateaus, "."];
}

/** The paper's validation curve of the unit's paper counterpart, on the axes it can share: mini-batches, or characters. */
function paperSeries(unit, axis, paperTraining) {
  const curve = unit.paperName === null ? undefined : paperTraining.validation[unit.paperName];
  if (!curve || axis.key === "seconds") return [];
  const scale = axis.key === "characters" ? paperTraining.characters_per_step : 1;
  const points = curve.map(([step, loss]) => ({ x: step * scale, y: loss }));
  return [{ key: `${unit.id}-paper`, unit, kind: "paper's validation", colour: unit.colour, className: "paper", dash: PAPER_DASH, points }];
}

function drawHistory(body, units, paper, paperMemory, paperTraining) {
  const paperCharacters = paper.training.minibatches * paperTraining.characters_per_step;
  const measures = MEASURES.filter((measure) => units.some((unit) => unit.model.history.some((point) => point[measure.key] !== undefined)));
  const controls = body.append("div").attr("class", "controls history-controls");
  const measureLabels = radioGroup(controls, "measure", "history-measure", measures);
  const legend = body.append("div").attr("class", "chart-legend");
  const shownUnits = renderUnitLegend(legend, units, () => draw());
  const legendNotes = legend.append("span").attr("class", "legend-notes");
  const chart = body.append("div").attr("class", "chart history-chart").node();

  const draw = () => {
    const measure = checked(measureLabels, measures);
    const series = shownUnits().flatMap((unit) => {
      const { history } = unit.model;
      const ours = {
        key: `${unit.id}-history`, unit, kind: "ours", colour: unit.colour, className: "history", markers: true,
        points: history.map((point) => ({ x: point.characters, y: point[measure.key] ?? null, sequences: point.test_sequences })),
      };
      const theirs = unit.paperName === null ? undefined : measure.paper(paper, paperMemory, unit);
      if (theirs === undefined) return [ours];
      return [ours, {
        key: `${unit.id}-paper-final`, unit, kind: "the paper's, two epochs", colour: unit.colour, className: "paper-final", marker: "diamond",
        points: [{ x: paperCharacters, y: theirs }],
      }];
    });
    legendNotes.text("");
    if (series.some((item) => item.marker)) legendItem(legendNotes.node(), { colour: "#555", marker: "diamond", label: "the paper's model after two epochs (text8)" });
    const allPoints = series.flatMap((item) => item.points).filter((point) => point.y !== null);
    const most = d3.max(allPoints, (point) => point.sequences ?? 0);
    drawLineChart(chart, {
      series,
      y: { label: measure.label, domain: [0, d3.max(allPoints, (point) => point.y)], format: d3.format(".0%") },
      ariaLabel: `Line chart of ${measure.label} against characters seen, for each unit's snapshots and the paper's models; `
        + "focus and use the arrow keys to read values.",
      x: { label: "characters seen", domain: [0, d3.max(allPoints, (point) => point.x)], format: formatTick, name: formatLarge },
      describe: (xValue) => series.flatMap((item) => {
        const point = item.points.find((candidate) => candidate.x === xValue && candidate.y !== null);
        if (!point) return [];
        // A snapshot tested on fewer sequences than the others says so.
        const tested = point.sequences && point.sequences < most ? `, first ${formatCount(point.sequences)} test sequences` : "";
        return [{ colour: item.colour, marker: item.marker, label: `${item.unit.name} (${item.kind}${tested})`, value: formatPercent(point.y) }];
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
