// Figure 6: test accuracy by the number of letters of the word already read, per unit and for the top-1/2/3
// criteria, from metrics.json (served by /api/models). By default counted as the paper counts, at every character with a word outside the
// vocabulary a miss; a switch counts words in the vocabulary only. The paper's curves can be laid over, dimmed,
// on its own count only. The legend hides and shows a unit's curves.

import { formatCount, formatPercent } from "../format.js";
import { drawLineChart, drawResponsive, legendItem } from "../line-chart.js";
import { renderUnitLegend } from "../unit-toggles.js";

const d3 = window.d3;
const CRITERIA = [
  { key: "top1", index: 0, label: "top 1", dash: null },
  { key: "top2", index: 1, label: "top 2", dash: "6 3" },
  { key: "top3", index: 2, label: "top 3", dash: "2 3" },
];
const COUNTS = [
  { key: "every_character", label: "every character, as the paper counts", curves: (accuracy) => accuracy.every_character },
  { key: "real_words", label: "words in the vocabulary only", curves: (accuracy) => accuracy },
];
const PAPER_LABEL = "paper, text8";
// Below this many test words a point is mostly noise (a handful of 17-letter words), so the line stops.
const MIN_CASES = 100;

export function render(element, { units: served, paper }) {
  const body = d3.select(element).select(".figure-body").text("");
  const units = served.filter((unit) => unit.model.accuracy_by_letters_known);
  if (units.length === 0) {
    body.append("p").attr("class", "notice").text("No accuracy record: models/checkpoints/metrics.json is missing or has no accuracy by letters known.");
    return;
  }
  // The paper's count where every record has it; records evaluated before it have only ours.
  const counts = COUNTS.filter((count) => units.every((unit) => count.curves(unit.model.accuracy_by_letters_known)));

  const controls = body.append("div").attr("class", "controls");
  const choice = controls.append("fieldset").attr("class", "axis-toggle");
  choice.append("legend").text("counting");
  const labels = choice.selectAll("label").data(counts).join("label");
  labels.append("input").attr("type", "radio").attr("name", "accuracy-count").attr("value", (count) => count.key)
    .property("checked", (count, index) => index === 0);
  labels.append("span").text((count) => count.label);
  const toggleLabel = controls.append("label").property("hidden", !units.some((unit) => unit.paperName !== null));
  const paperToggle = toggleLabel.append("input").attr("type", "checkbox").attr("name", "paper-overlay");
  toggleLabel.append("span").text("overlay the paper's curves (dimmed, “paper, text8”)");
  const note = body.append("p").attr("class", "chart-note");
  const legend = body.append("div").attr("class", "chart-legend");
  const shownUnits = renderUnitLegend(legend, units, () => draw());
  CRITERIA.forEach((criterion) => legendItem(legend.node(), { colour: "#555", dash: criterion.dash, label: criterion.label }));
  const chart = body.append("div").attr("class", "chart").node();

  const ours = (count, shown) => shown.flatMap((unit) => {
    const curves = count.curves(unit.model.accuracy_by_letters_known);
    return CRITERIA.map((criterion) => ({
      key: `${unit.id}-${criterion.key}`,
      unit,
      criterion,
      cases: curves.count,
      colour: unit.colour,
      dash: criterion.dash,
      points: curves[criterion.key].map((value, letters) => ({ x: letters, y: (curves.count?.[letters] ?? MIN_CASES) >= MIN_CASES ? value : null })),
    }));
  });
  const theirs = (shown) => {
    const series = shown.filter((unit) => unit.paperName !== null).flatMap((unit) => CRITERIA.map((criterion) => ({
      key: `paper-${unit.id}-${criterion.key}`,
      unit,
      criterion,
      colour: unit.colour,
      dash: criterion.dash,
      className: "paper",
      points: paper.accuracy_by_letters_known.values[unit.paperName][criterion.index].map((value, letters) => ({ x: letters, y: value })),
    })));
    // One label is enough to name the whole dimmed family.
    if (series.length) series[0].label = PAPER_LABEL;
    return series;
  };

  const draw = () => {
    const count = counts.find((item) => item.key === choice.select("input:checked").property("value")) ?? counts[0];
    // The paper counted every character: its curves stand beside ours on that count only.
    const comparable = count.key === "every_character";
    paperToggle.property("disabled", !comparable);
    note.text(comparable ? "" : "The paper's curves count every character, so they are not laid over this count.");
    const shown = shownUnits();
    const series = comparable && paperToggle.property("checked") ? [...theirs(shown), ...ours(count, shown)] : ours(count, shown);
    drawLineChart(chart, {
      series,
      // The axis ends where the last line does, not at the longest word counted.
      x: { label: "letters of the word already read", domain: [0, d3.max(series, (item) => d3.max(item.points, (point) => (point.y === null ? 0 : point.x)))], format: d3.format("d"), integer: true },
      y: { label: `test accuracy (${count.label})`, domain: [0, 1], format: d3.format(".0%") },
      ariaLabel: `Line chart of test accuracy, counting ${count.label}, against letters already read, per unit; focus and use the arrow keys to read values.`,
      describe: (letters) => series.filter((item) => item.points[letters]?.y !== null && item.points[letters] !== undefined)
        .map((item) => ({
          colour: item.colour,
          dash: item.dash,
          label: `${item.className === "paper" ? `${PAPER_LABEL}: ${item.unit.paperName}` : item.unit.name} ${item.criterion.label}`
            + (item.className === "paper" || item.criterion.index > 0 ? "" : ` (${formatCount(item.cases[letters] ?? 0)} cases)`),
          value: formatPercent(item.points[letters].y),
        })),
    });
  };
  paperToggle.on("change", draw);
  choice.selectAll("input").on("change", draw);
  drawResponsive(chart, draw);
}
