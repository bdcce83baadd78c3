// Reach and use. Left, for each unit, the copy test of every evaluation (metrics.json's intervention,
// served by /api/models): how much more probable a word is at its repeat when its first occurrence is
// there than when that occurrence is swapped for another word of its length, in nats, per gap between
// the two, with its 95 % interval. Right, the same unit's reach-10: the share of its connectivity more
// than ten characters back. The legend hides and shows a unit's row. Under the chart, sentences written from the
// same numbers say what the two measures are and whether they rank the units alike.

import { appendNumber, formatInterval, formatLoss, formatNatsInterval, formatPercent } from "../format.js";
import { drawResponsive } from "../line-chart.js";
import { renderUnitLegend } from "../unit-toggles.js";

const d3 = window.d3;
const PLACES = [
  { id: "space", label: "at the repeat's space (no letter of it typed)" },
  { id: "first_letter", label: "at its first letter" },
];
// Each gap bucket's marker, in bucket order; more buckets than shapes repeat them.
const SHAPES = [d3.symbolCircle, d3.symbolSquare, d3.symbolTriangle, d3.symbolDiamond];
const MARGIN = { top: 24, right: 16, bottom: 40, left: 108 };
const ROW_HEIGHT = 46;
const NARROW_PX = 560;

export function render(element, { units: served }) {
  const body = d3.select(element).select(".figure-body").text("");
  const units = served.filter((unit) => unit.model.intervention?.buckets?.length);
  if (units.length === 0) {
    body.append("p").attr("class", "notice")
      .text("No copy test: models/checkpoints/metrics.json has none (python -m training evaluate writes it).");
    return;
  }
  const { buckets } = units[0].model.intervention;
  let place = PLACES[0].id;
  // The keyboard's cursor: a unit (row) and a column (a gap bucket, or the reach after the last one).
  let cursor = null;

  const controls = body.append("div").attr("class", "controls");
  const placeSet = controls.append("fieldset");
  placeSet.append("legend").text("Gain measured");
  const placeLabels = placeSet.selectAll("label").data(PLACES).join("label");
  placeLabels.append("input").attr("type", "radio").attr("name", `place-${element.id}`).attr("value", (item) => item.id)
    .property("checked", (item) => item.id === place);
  placeLabels.append("span").text((item) => item.label);
  const legend = body.append("div").attr("class", "chart-legend");
  const shownUnits = renderUnitLegend(legend, units, () => draw());
  buckets.forEach((bucket, index) => {
    const item = legend.append("span");
    item.append("svg").attr("width", 14).attr("height", 14).attr("aria-hidden", "true")
      .append("path").attr("transform", "translate(7,7)").attr("class", "gap-marker")
      .attr("d", d3.symbol(SHAPES[index % SHAPES.length], 60)());
    item.append("span").text(` gap ${bucket.label} characters`);
  });
  const chart = body.append("div").attr("class", "chart intervention-chart").node();
  const readout = body.append("p").attr("class", "status").attr("aria-live", "polite");

  const gain = (bucket) => bucket[`gain_${place}`];
  const interval = (bucket) => bucket[`gain_${place}_ci95`] ?? [gain(bucket), gain(bucket)];
  const reach = (unit) => unit.model.memory?.test?.reach_10 ?? null;
  const reachInterval = (unit) => unit.model.memory?.test?.reach_10_ci95 ?? [reach(unit), reach(unit)];

  function describe({ row, column }) {
    const unit = shownUnits()[row];
    if (column === buckets.length) {
      if (reach(unit) === null) return `${unit.name}: no reach-10 recorded.`;
      return `${unit.name}, reach-10: ${formatPercent(reach(unit))} of its connectivity more than ten characters back `
        + `(95 % interval ${formatInterval(reachInterval(unit))}).`;
    }
    const bucket = unit.model.intervention.buckets[column];
    return `${unit.name}, gap ${bucket.label} characters: gain ${formatLoss(gain(bucket))} nats `
      + `${PLACES.find((item) => item.id === place).label} (95 % interval ${formatNatsInterval(interval(bucket))}), `
      + `over ${d3.format(",")(bucket.cases)} cases.`;
  }

  function draw() {
    const shown = shownUnits();
    if (cursor !== null && cursor.row >= shown.length) cursor = null;
    const width = Math.max(280, chart.clientWidth || 640);
    const narrow = width < NARROW_PX;
    const plotHeight = shown.length * ROW_HEIGHT;
    // Side by side on a wide screen (gain, then reach); on a phone the reach panel goes under the gain panel.
    const gainWidth = narrow ? width - MARGIN.left - MARGIN.right : Math.round((width - MARGIN.left - MARGIN.right) * 0.62);
    const reachLeft = narrow ? MARGIN.left : MARGIN.left + gainWidth + 40;
    const reachWidth = narrow ? gainWidth : width - reachLeft - MARGIN.right;
    const reachTop = narrow ? MARGIN.top + plotHeight + MARGIN.bottom + 20 : MARGIN.top;
    const height = reachTop + plotHeight + MARGIN.bottom;

    const frame = d3.select(chart).text("").append("div").attr("class", "chart-frame").attr("tabindex", 0).attr("role", "img")
      .attr("aria-label", "Dot chart of each unit's gain in log-probability from a word's first occurrence, by gap, beside its "
        + "reach-10; focus and use the arrow keys to read values.");
    const svg = frame.append("svg").attr("viewBox", `0 0 ${width} ${height}`).attr("width", width).attr("height", height);
    const lows = shown.flatMap((unit) => unit.model.intervention.buckets.map((bucket) => interval(bucket)[0]));
    const highs = shown.flatMap((unit) => unit.model.intervention.buckets.map((bucket) => interval(bucket)[1]));
    const x = d3.scaleLinear().domain([Math.min(0, d3.min(lows)), Math.max(0, d3.max(highs))]).nice()
      .range([MARGIN.left, MARGIN.left + gainWidth]);
    const y = d3.scaleBand().domain(shown.map((unit) => unit.id)).range([MARGIN.top, MARGIN.top + plotHeight]).padding(0.2);
    const offset = (index) => (index - (buckets.length - 1) / 2) * (y.bandwidth() / Math.max(buckets.length, 1));

    const gainPanel = svg.append("g").attr("class", "gain-panel");
    gainPanel.append("g").attr("class", "axis x-axis").attr("transform", `translate(0,${MARGIN.top + plotHeight})`)
      .call(d3.axisBottom(x).ticks(narrow ? 4 : 6));
    gainPanel.append("text").attr("class", "axis-title").attr("x", MARGIN.left + gainWidth / 2).attr("y", MARGIN.top + plotHeight + 34)
      .attr("text-anchor", "middle").text("gain from the first occurrence (nats)");
    gainPanel.append("line").attr("class", "zero-rule").attr("x1", x(0)).attr("x2", x(0))
      .attr("y1", MARGIN.top).attr("y2", MARGIN.top + plotHeight);
    gainPanel.append("g").attr("class", "axis y-axis").attr("transform", `translate(${MARGIN.left},0)`)
      .call(d3.axisLeft(y).tickFormat((id) => shown.find((unit) => unit.id === id).name).tickSize(0))
      .call((axis) => axis.select(".domain").remove());
    const rows = gainPanel.selectAll("g.unit-row").data(shown).join("g").attr("class", "unit-row")
      .attr("data-unit", (unit) => unit.id).attr("color", (unit) => unit.colour);
    const marks = rows.selectAll("g.gap").data((unit) => unit.model.intervention.buckets.map((bucket, index) => ({ unit, bucket, index })))
      .join("g").attr("class", "gap").attr("data-gap", (item) => item.bucket.label)
      .attr("data-gain", (item) => gain(item.bucket))
      .attr("transform", (item) => `translate(0,${y(item.unit.id) + y.bandwidth() / 2 + offset(item.index)})`);
    marks.append("line").attr("class", "whisker").attr("x1", (item) => x(interval(item.bucket)[0])).attr("x2", (item) => x(interval(item.bucket)[1]));
    marks.append("path").attr("class", "gap-marker").attr("transform", (item) => `translate(${x(gain(item.bucket))},0)`)
      .attr("d", (item) => d3.symbol(SHAPES[item.index % SHAPES.length], 48)());

    const reachValues = shown.map(reach).filter((value) => value !== null);
    const reachPanel = svg.append("g").attr("class", "reach-panel");
    if (reachValues.length) {
      const reachHigh = d3.max(shown.filter((unit) => reach(unit) !== null), (unit) => reachInterval(unit)[1]);
      const xReach = d3.scaleLinear().domain([0, reachHigh || 1]).nice().range([reachLeft, reachLeft + reachWidth]);
      const yReach = y.copy().range([reachTop, reachTop + plotHeight]);
      reachPanel.append("g").attr("class", "axis x-axis").attr("transform", `translate(0,${reachTop + plotHeight})`)
        .call(d3.axisBottom(xReach).ticks(narrow ? 4 : 3, "~%"));
      reachPanel.append("text").attr("class", "axis-title").attr("x", reachLeft + reachWidth / 2).attr("y", reachTop + plotHeight + 34)
        .attr("text-anchor", "middle").text("reach-10: share more than 10 back");
      if (narrow) {
        reachPanel.append("g").attr("class", "axis y-axis").attr("transform", `translate(${reachLeft},0)`)
          .call(d3.axisLeft(yReach).tickFormat((id) => shown.find((unit) => unit.id === id).name).tickSize(0))
          .call((axis) => axis.select(".domain").remove());
      }
      const bars = reachPanel.selectAll("g.reach").data(shown.filter((unit) => reach(unit) !== null)).join("g").attr("class", "reach")
        .attr("data-unit", (unit) => unit.id).attr("data-reach", reach).attr("color", (unit) => unit.colour);
      bars.append("rect").attr("x", reachLeft).attr("y", (unit) => yReach(unit.id) + yReach.bandwidth() * 0.25)
        .attr("width", (unit) => xReach(reach(unit)) - reachLeft).attr("height", yReach.bandwidth() * 0.5);
      bars.append("line").attr("class", "whisker")
        .attr("x1", (unit) => xReach(reachInterval(unit)[0])).attr("x2", (unit) => xReach(reachInterval(unit)[1]))
        .attr("y1", (unit) => yReach(unit.id) + yReach.bandwidth() / 2).attr("y2", (unit) => yReach(unit.id) + yReach.bandwidth() / 2);
    }

    const highlight = () => {
      svg.selectAll(".selected").classed("selected", false);
      if (cursor === null) return;
      const unit = shown[cursor.row];
      if (cursor.column === buckets.length) reachPanel.selectAll("g.reach").filter((item) => item === unit).classed("selected", true);
      else marks.filter((item) => item.unit === unit && item.index === cursor.column).classed("selected", true);
      readout.text(describe(cursor));
    };
    frame.on("keydown", (event) => {
      const steps = { ArrowDown: [1, 0], ArrowUp: [-1, 0], ArrowRight: [0, 1], ArrowLeft: [0, -1] };
      if (!(event.key in steps)) return;
      event.preventDefault();
      const [down, right] = steps[event.key];
      const from = cursor ?? { row: 0, column: -right };
      cursor = {
        row: Math.max(0, Math.min(shown.length - 1, from.row + down)),
        column: Math.max(0, Math.min(buckets.length, from.column + right)),
      };
      highlight();
    });
    marks.on("pointerenter", (event, item) => {
      cursor = { row: shown.indexOf(item.unit), column: item.index };
      highlight();
    });
    reachPanel.selectAll("g.reach").on("pointerenter", (event, unit) => {
      cursor = { row: shown.indexOf(unit), column: buckets.length };
      highlight();
    });
    highlight();
  }

  placeLabels.select("input").on("change", (event, item) => {
    place = item.id;
    draw();
    writeProse(prose, units, place);
  });
  drawResponsive(chart, draw);
  const prose = body.append("div").attr("class", "intervention-prose");
  writeProse(prose, units, place);
}

/** The sentences under the chart: what each measure is, and whether they rank the units alike, from the numbers shown. */
function writeProse(container, units, place) {
  container.text("");
  const { buckets } = units[0].model.intervention;
  const placeLabel = place === "space" ? "at the space before the repeat" : "at the repeat's first letter";
  const source = (unit, path) => `metrics.json:models.${unit.id}.${path}`;
  const test = units[0].model.memory?.test;

  const what = container.append("p");
  what.append("span").text("Reach-10 says where a unit's gradient goes: the share of a connectivity row that lies more than ten "
    + "characters back, averaged over ");
  if (test) appendNumber(what, test.rows, "count", source(units[0], "memory.test.rows"));
  else what.append("span").text("a sample of");
  what.append("span").text(" test positions. The gain says whether the unit uses what lies there. In test sequences where a word of "
    + "five letters or more comes twice, its first occurrence is swapped for another vocabulary word of the same length, and the "
    + "gain is how much more log-probability the unit gives the word at its repeat with the first occurrence than without it, "
    + `${placeLabel}: 0 nats means no use, 0.1 nats about a tenth more probable. Each gap bucket holds `);
  appendNumber(what, buckets[0].cases, "count", source(units[0], "intervention.buckets.0.cases"));
  what.append("span").text(" cases.");

  // The units ranked by reach and by the gain in the middle gap bucket, far enough to need memory, near enough to have many cases.
  const middle = Math.floor((buckets.length - 1) / 2);
  const withReach = units.filter((unit) => unit.model.memory?.test?.reach_10 !== undefined);
  const byReach = [...withReach].sort((a, b) => b.model.memory.test.reach_10 - a.model.memory.test.reach_10);
  const byGain = [...withReach].sort((a, b) => gainOf(b, middle, place) - gainOf(a, middle, place));
  const agree = byReach.every((unit, index) => unit === byGain[index]);
  const order = (ranked) => listOf(ranked.map((unit) => unit.name));
  const rank = container.append("p");
  if (withReach.length > 1) {
    if (agree) {
      rank.append("span").text(`The two agree: ranked by reach-10 and by the gain at a gap of ${buckets[middle].label} characters, `
        + `the units come in the same order, ${order(byReach)}.`);
    } else {
      rank.append("span").text(`The two disagree: by reach-10 the order is ${order(byReach)}; by the gain at a gap of `
        + `${buckets[middle].label} characters it is ${order(byGain)}.`);
    }
    const [first, second] = byGain;
    rank.append("span").text(` At that gap the ${first.name} gains `);
    appendNumber(rank, gainOf(first, middle, place), "nats", source(first, `intervention.buckets.${middle}.gain_${place}`));
    rank.append("span").text(` nats and the ${second.name} `);
    appendNumber(rank, gainOf(second, middle, place), "nats", source(second, `intervention.buckets.${middle}.gain_${place}`));
    rank.append("span").text(".");
  }
  const last = buckets.length - 1;
  const unused = units.filter((unit) => (unit.model.intervention.buckets[last][`gain_${place}_ci95`] ?? [1, 1])[0] <= 0);
  if (unused.length) {
    rank.append("span").text(` At ${buckets[last].label} characters the interval of ${listOf(unused.map((unit) => `the ${unit.name}`))} `
      + `reaches 0: no use of the first occurrence is measurable that far back.`);
  }

  container.append("p").text("Why they can disagree: the gradient is local. It says how the score would move for an "
    + "infinitesimal change to a character, and a unit can be sensitive to characters it does not rely on. The gain is a "
    + "whole-word change on real text, and it measures one use of memory, copying a word, where a unit might use what it "
    + "reaches for something else. Where the two agree, what a unit's gradient reaches is also what it uses.");
}

function gainOf(unit, index, place) {
  return unit.model.intervention.buckets[index][`gain_${place}`];
}

/** "a, b and c". */
function listOf(items) {
  return items.length < 2 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}
