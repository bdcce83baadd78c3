// Figure 7: training and validation loss per unit from the training log rows in metrics.json,
// against wall-clock time or mini-batches.

import { formatDuration, formatLoss, metricsFor } from "../format.js";
import { drawLineChart, drawResponsive, legendItem } from "../line-chart.js";

const d3 = window.d3;
const AXES = [
  { key: "seconds", label: "wall-clock time", format: (seconds) => formatDuration(seconds) },
  { key: "step", label: "mini-batches", format: d3.format("~s") },
];
const VALID_DASH = "5 3";

export function render(element, { units: served, metrics }) {
  const body = d3.select(element).select(".figure-body").text("");
  const units = served.filter((unit) => metricsFor(metrics, unit.id)?.training_curve?.length);
  if (units.length === 0) {
    body.append("p").attr("class", "notice").text("No training record: models/checkpoints/metrics.json is missing or has no training curve.");
    return;
  }

  const controls = body.append("div").attr("class", "controls");
  const axisSet = controls.append("fieldset").attr("class", "axis-toggle");
  axisSet.append("legend").text("x-axis");
  const axisLabels = axisSet.selectAll("label").data(AXES).join("label");
  axisLabels.append("input").attr("type", "radio").attr("name", "training-axis").attr("value", (axis) => axis.key)
    .property("checked", (axis, index) => index === 0);
  axisLabels.append("span").text((axis) => axis.label);
  const legend = body.append("div").attr("class", "chart-legend");
  units.forEach((unit) => legendItem(legend.node(), { colour: unit.colour, label: unit.name }));
  legendItem(legend.node(), { colour: "#555", label: "training" });
  legendItem(legend.node(), { colour: "#555", dash: VALID_DASH, label: "validation" });
  const chart = body.append("div").attr("class", "chart").node();

  const draw = () => {
    const axis = AXES.find((candidate) => candidate.key === axisLabels.select("input:checked").property("value")) ?? AXES[0];
    const series = units.flatMap((unit) => {
      const curve = metricsFor(metrics, unit.id).training_curve;
      const train = curve.map((row) => ({ x: row[axis.key], y: row.train_loss }));
      const valid = curve.filter((row) => row.valid_loss !== null && row.valid_loss !== undefined)
        .map((row) => ({ x: row[axis.key], y: row.valid_loss }));
      return [
        { key: `${unit.id}-train`, unit, kind: "training", colour: unit.colour, className: "train", points: train },
        { key: `${unit.id}-valid`, unit, kind: "validation", colour: unit.colour, className: "valid", dash: VALID_DASH, markers: true, points: valid },
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

/** The last logged point at or before x: the loss a reader would see on the line there. */
function nearestAtOrBefore(points, x) {
  const index = d3.bisector((point) => point.x).right(points, x) - 1;
  return index >= 0 ? points[index] : null;
}
