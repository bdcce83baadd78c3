// Figure 5: how far back each unit looks. For every unit, the mean share of a connectivity row that
// lies 0, 1, 2, 3–5, … characters back, over a sample of test positions (metrics.json's memory
// profile, served by /api/models); the paper's profile on the example sentence can be laid over,
// dimmed. Under the chart, each unit's two reach numbers in words, ours beside the paper's.

import * as api from "../api.js";
import { formatPercent } from "../format.js";
import { drawLineChart, drawResponsive, legendItem } from "../line-chart.js";

const d3 = window.d3;
const PAPER_LABEL = "paper, example sentence";

/** On the log axis a bucket of distances [low, high] spans [low + 1, high + 2): distance 0 has a place. */
const axisPosition = (distance) => distance + 1;
const bucketCentre = (bucket) => Math.sqrt(axisPosition(bucket.low) * axisPosition(bucket.high + 1));

export async function render(element, { units: served }) {
  const body = d3.select(element).select(".figure-body").text("");
  const units = served.filter((unit) => unit.model.memory?.test);
  if (units.length === 0) {
    body.append("p").attr("class", "notice")
      .text("No memory profile: models/checkpoints/metrics.json has none (python -m training evaluate writes it).");
    return;
  }
  const paper = await api.loadPaperMemory();
  const { buckets } = units[0].model.memory;
  // The paper's profiles exist for its own units only, under the model ids of ours.
  const paperProfile = (unit) => (Object.hasOwn(paper.units, unit.id) ? paper.units[unit.id] : null);

  const controls = body.append("div").attr("class", "controls");
  const toggleLabel = controls.append("label").property("hidden", !units.some(paperProfile));
  const paperToggle = toggleLabel.append("input").attr("type", "checkbox").attr("name", "paper-overlay");
  toggleLabel.append("span").text(`overlay the paper's profile (dimmed, “${PAPER_LABEL}”)`);
  const legend = body.append("div").attr("class", "chart-legend");
  units.forEach((unit) => legendItem(legend.node(), { colour: unit.colour, label: unit.name }));
  const chart = body.append("div").attr("class", "chart").node();

  const profile = (shares) => shares.map((share, index) => ({ x: bucketCentre(buckets[index]), y: share }));
  const ours = units.map((unit) => ({
    key: unit.id, unit, colour: unit.colour, markers: true, points: profile(unit.model.memory.test.by_distance),
  }));
  const theirs = units.filter(paperProfile).map((unit) => ({
    key: `paper-${unit.id}`, unit, colour: unit.colour, markers: true, className: "paper", points: profile(paperProfile(unit).by_distance),
  }));
  if (theirs.length) theirs[0].label = PAPER_LABEL;
  const centres = buckets.map(bucketCentre);
  const bucketAt = (xValue) => d3.minIndex(centres, (centre) => Math.abs(centre - xValue));

  const draw = () => {
    const series = paperToggle.property("checked") ? [...theirs, ...ours] : ours;
    drawLineChart(chart, {
      series,
      x: {
        label: "characters back (log scale)",
        scale: d3.scaleLog,
        domain: [axisPosition(buckets[0].low), axisPosition(buckets.at(-1).high + 1)],
        ticks: [...buckets.map((bucket) => axisPosition(bucket.low)), axisPosition(buckets.at(-1).high)],
        format: (position) => String(position - 1),
        name: (xValue) => buckets[bucketAt(xValue)].label,
      },
      y: { label: "share of a row's connectivity", domain: [0, d3.max(series, (item) => d3.max(item.points, (point) => point.y))], format: d3.format(".0%") },
      ariaLabel: "Line chart of the share of connectivity by distance back, per unit; focus and use the arrow keys to read values.",
      describe: (xValue) => series.map((item) => ({
        colour: item.colour,
        label: item.className === "paper" ? `${PAPER_LABEL}: ${item.unit.paperName}` : item.unit.name,
        value: formatPercent(item.points[bucketAt(xValue)].y),
      })),
    });
  };
  paperToggle.on("change", draw);
  drawResponsive(chart, draw);

  const sample = units[0].model.memory.test;
  body.append("p").attr("class", "memory-reach-intro")
    .text(`How far each unit reaches, as a mean over ${d3.format(",")(sample.rows)} test positions `
      + "(each row for the word actually typed there), beside the same two shares on the example sentence:");
  body.append("ul").attr("class", "memory-reach").selectAll("li").data(units).join("li")
    .attr("data-unit", (unit) => unit.id)
    .text((unit) => reachInWords(unit, paperProfile(unit)));
}

function reachInWords(unit, paperUnit) {
  const { test, example } = unit.model.memory;
  const pair = (numbers) => `${formatPercent(numbers.before_word)} and ${formatPercent(numbers.reach_10)}`;
  const onExample = [example && `ours ${pair(example)}`, paperUnit && `the paper's ${unit.paperName} ${pair(paperUnit)}`].filter(Boolean);
  return `${unit.name}: ${formatPercent(test.before_word)} of its connectivity lies before the current word and `
    + `${formatPercent(test.reach_10)} more than 10 characters back on our test set`
    + (onExample.length ? `; on the example sentence, ${onExample.join(", ")}.` : ".");
}
