// Figure 5: how far back each unit looks. For every unit, the mean share of a connectivity row that lies 0, 1, 2,
// 3–5, … characters back (metrics.json's memory profile, served by /api/models), divided by the distances each
// bucket spans, so that wide buckets do not look heavy, on logarithmic axes. By default over our sample of test
// positions, with its 95 % interval as a band; the switch shows the example sentence instead, where the paper's
// profile can be set beside ours (measured the same way on the same text). The legend hides and shows a unit's
// lines. Under the chart, each unit's two reach numbers in words.

import * as api from "../api.js";
import { appendNumber, appendProse, formatPercent } from "../format.js";
import { drawLineChart, drawResponsive, legendItem } from "../line-chart.js";
import { renderUnitLegend } from "../unit-toggles.js";

const d3 = window.d3;
const PAPER_LABEL = "paper, example sentence";
const SUPERSCRIPTS = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };
const MAX_Y_TICKS = 7;
// The axis stops here, so that the units that keep some memory are not squashed into its top; lower shares run off
// the bottom and the note under the chart gives them.
const FLOOR = 1e-12;

/** On the log axis a bucket of distances [low, high] spans [low + 1, high + 2): distance 0 has a place. */
const axisPosition = (distance) => distance + 1;
const bucketCentre = (bucket) => Math.sqrt(axisPosition(bucket.low) * axisPosition(bucket.high + 1));
const bucketWidth = (bucket) => bucket.high - bucket.low + 1;
const powerOfTen = (value) => (value === 1 ? "1" : `10${String(Math.round(Math.log10(value))).replace(/[-0-9]/g, (symbol) => SUPERSCRIPTS[symbol])}`);

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
  const sample = units[0].model.memory.test;

  const controls = body.append("div").attr("class", "controls");
  const choice = controls.append("fieldset").attr("class", "axis-toggle");
  choice.append("legend").text("measured on");
  const rows = [sample.rows, "count", `metrics.json:models.${units[0].id}.memory.test.rows`];
  const views = [
    { key: "test", label: ["our test sample (", rows, " positions)"] },
    { key: "example", label: ["the example sentence, ours beside the paper's"] },
  ].filter((view) => view.key === "test" || units.some((unit) => unit.model.memory.example));
  const labels = choice.selectAll("label").data(views).join("label");
  labels.append("input").attr("type", "radio").attr("name", "memory-view").attr("value", (view) => view.key)
    .property("checked", (view, index) => index === 0);
  labels.append("span").each(function label(view) { appendProse(d3.select(this), view.label); });
  const legend = body.append("div").attr("class", "chart-legend");
  const shownUnits = renderUnitLegend(legend, units, () => draw());
  const legendNotes = legend.append("span").attr("class", "legend-notes");
  const chart = body.append("div").attr("class", "chart").node();
  const belowNote = body.append("p").attr("class", "chart-note below-floor");

  const perCharacter = (shares) => shares.map((share, index) => ({ x: bucketCentre(buckets[index]), y: share / bucketWidth(buckets[index]), share }));
  const band = (intervals) => intervals?.map(([low, high], index) => ({
    x: bucketCentre(buckets[index]), low: low / bucketWidth(buckets[index]), high: high / bucketWidth(buckets[index]),
  }));
  const seriesFor = (view, shown) => {
    const ours = shown.filter((unit) => unit.model.memory[view]).map((unit) => ({
      key: unit.id, unit, colour: unit.colour, markers: true, points: perCharacter(unit.model.memory[view].by_distance),
      band: view === "test" ? band(unit.model.memory.test.by_distance_ci95) : undefined,
    }));
    if (view === "test") return ours;
    const theirs = shown.filter(paperProfile).map((unit) => ({
      key: `paper-${unit.id}`, unit, colour: unit.colour, markers: true, className: "paper", points: perCharacter(paperProfile(unit).by_distance),
    }));
    if (theirs.length) theirs[0].label = PAPER_LABEL;
    return [...theirs, ...ours];
  };
  const centres = buckets.map(bucketCentre);
  const bucketAt = (xValue) => d3.minIndex(centres, (centre) => Math.abs(centre - xValue));

  const draw = () => {
    const view = choice.select("input:checked").property("value");
    const series = seriesFor(view, shownUnits());
    legendNotes.text("");
    if (view === "example" && series.some((item) => item.className === "paper")) {
      legendItem(legendNotes.node(), { colour: "#777", label: `dimmed: ${PAPER_LABEL}` });
    }
    const values = series.flatMap((item) => [...item.points.map((point) => point.y), ...(item.band ?? []).map((point) => point.low)])
      .filter((value) => value > 0);
    const lowest = Math.max(FLOOR, 10 ** Math.floor(Math.log10(d3.min(values))));
    const below = series.flatMap((item) => item.points.filter((point) => point.y > 0 && point.y < lowest)
      .map((point) => [`${item.className === "paper" ? `the paper's ${item.unit.paperName}` : item.unit.name} at ${buckets[bucketAt(point.x)].label}, `,
        [point.y, "percent", "derived"]]));
    belowNote.text("");
    if (below.length) appendProse(belowNote, ["Below the axis (per character): ", ...below.flatMap((part, index) => [index ? "; " : "", ...part]), "."]);
    const highest = 10 ** Math.ceil(Math.log10(d3.max(values)));
    const decades = Math.round(Math.log10(highest / lowest));
    const step = Math.ceil(decades / (MAX_Y_TICKS - 1));
    const ticks = d3.range(0, decades + 1, step).map((power) => highest / 10 ** power);
    drawLineChart(chart, {
      // A log axis has no 0: a share of 0, or an interval reaching it, stops at the axis' floor.
      series: series.map((item) => ({
        ...item,
        points: item.points.map((point) => ({ ...point, y: point.y > 0 ? point.y : null })),
        band: item.band?.map((point) => ({ ...point, low: Math.max(point.low, lowest) })),
      })),
      x: {
        label: "characters back (log scale)",
        scale: d3.scaleLog,
        domain: [axisPosition(buckets[0].low), axisPosition(buckets.at(-1).high + 1)],
        ticks: [...buckets.map((bucket) => axisPosition(bucket.low)), axisPosition(buckets.at(-1).high)],
        format: (position) => String(position - 1),
        name: (xValue) => buckets[bucketAt(xValue)].label,
      },
      y: { label: "share of a row per character (log scale)", scale: d3.scaleLog, domain: [lowest, highest], ticks, format: powerOfTen },
      ariaLabel: `Line chart of the share of connectivity per character of distance back, per unit, on ${view === "test" ? "our test sample" : "the example sentence"}; `
        + "focus and use the arrow keys to read values.",
      describe: (xValue) => series.map((item) => {
        const point = item.points[bucketAt(xValue)];
        return {
          colour: item.colour,
          label: item.className === "paper" ? `${PAPER_LABEL}: ${item.unit.paperName}` : item.unit.name,
          value: `${formatPercent(point.y)} per character, ${formatPercent(point.share)} in all`,
        };
      }),
    });
  };
  choice.selectAll("input").on("change", draw);
  drawResponsive(chart, draw);

  appendProse(body.append("p").attr("class", "memory-reach-intro"), [
    "How far each unit reaches, as a mean over ", rows, " test positions (each row for the word actually typed there, with its 95 % interval), "
    + "beside the same two shares on the example sentence:",
  ]);
  const items = body.append("ul").attr("class", "memory-reach").selectAll("li").data(units).join("li").attr("data-unit", (unit) => unit.id);
  items.each(function reach(unit) { reachInWords(d3.select(this), unit, paperProfile(unit)); });
}

/** "GRU: 45.3 % (45.0–45.6 %) of its connectivity lies before the current word and …", each number naming its source. */
function reachInWords(item, unit, paperUnit) {
  const { test, example } = unit.model.memory;
  const ours = `metrics.json:models.${unit.id}.memory`;
  const text = (words) => item.node().append(words);
  const share = (value, source, interval) => {
    appendNumber(item, value, "percent", source);
    if (!interval) return;
    const bracket = item.append("span").attr("class", "interval");
    bracket.node().append(" (");
    appendNumber(bracket, interval, "interval", `${source}_ci95`);
    bracket.node().append(")");
  };
  const pair = (numbers, source) => {
    share(numbers.before_word, `${source}.before_word`);
    text(" and ");
    share(numbers.reach_10, `${source}.reach_10`);
  };
  text(`${unit.name}: `);
  share(test.before_word, `${ours}.test.before_word`, test.before_word_ci95);
  text(" of its connectivity lies before the current word and ");
  share(test.reach_10, `${ours}.test.reach_10`, test.reach_10_ci95);
  text(" more than 10 characters back on our test sample");
  if (example || paperUnit) text("; on the example sentence");
  if (example) {
    text(", ours ");
    pair(example, `${ours}.example`);
  }
  if (paperUnit) {
    text(`, the paper's ${unit.paperName} `);
    pair(paperUnit, `paper/memory.json:units.${unit.id}`);
  }
  text(".");
}
