// Appendix: the data and training of the models shown, from metrics.json, beside the paper's set-up.

import { appendNumber, appendProse, formatDuration, metricsFor, trainingTimeParts } from "../format.js";

const d3 = window.d3;
const PAPER_LABEL = "paper, text8";

export function render(element, { units: served, metrics, paper }) {
  const root = d3.select(element).text("");
  appendProse(root.append("p"), [
    "Text is cut into sequences of at most 200 characters without splitting a word, and whole sequences are shuffled with a fixed "
    + "seed into 90 % training, 5 % validation and 5 % test. Every character of a word, and the space in front of it, has the whole "
    + "word as its target; the training loss leaves out words outside the ", [served[0].model.vocabulary_size, "count", `api:models.${served[0].id}.vocabulary_size`],
    " most frequent ones, which the paper's accuracy, and ours on its count, grade as misses. All units share the batch size and the "
    + "optimiser (Adam); the table gives the characters each read.",
  ]);

  const units = served.map((unit) => ({ unit, record: metricsFor(metrics, unit.id) })).filter((item) => item.record);
  if (units.length === 0) {
    root.append("p").attr("class", "notice").text("The training record (models/checkpoints/metrics.json) is missing.");
    return;
  }
  const number = (value, format, source) => (cell) => appendNumber(cell, value, format, source);
  const rows = units.flatMap(({ unit, record }) => [
    { paper: false, cells: [unit.name, "ours", record.corpus.name,
      number(record.characters_seen, "large", `metrics.json:models.${unit.id}.characters_seen`),
      number(record.steps, "count", `metrics.json:models.${unit.id}.steps`), (cell) => appendProse(cell, trainingTimeParts(record, unit.id))] },
    ...(unit.paperName === null ? [] : [{ paper: true, cells: [unit.paperName, PAPER_LABEL, "text8", `${paper.training.epochs} epochs`,
      number(paper.training.minibatches, "count", "paper.json:training.minibatches"),
      `${formatDuration(paper.training.wall_clock_seconds_on_authors_gpu[unit.paperName])} on a GPU`] }]),
  ]);
  const scroll = root.append("div").attr("class", "table-scroll").attr("role", "region")
    .attr("aria-label", "Training of the models shown, and of the paper's");
  const table = scroll.append("table").attr("class", "data setup-table");
  table.append("caption").text("Training of the models shown, and of the paper's");
  table.append("thead").append("tr")
    .selectAll("th").data(["model", "source", "corpus", "characters read", "mini-batches", "training time"]).join("th")
    .attr("scope", "col").text((cell) => cell);
  table.append("tbody").selectAll("tr").data(rows).join("tr").classed("paper", (row) => row.paper)
    .selectAll("td").data((row) => row.cells).join("td")
    .attr("class", (cell, index) => (index < 3 ? "text" : null))
    .each(function fill(cell) {
      if (typeof cell === "function") cell(d3.select(this));
      else d3.select(this).text(cell);
    });
  const digests = Array.from(new Set(units.map(({ record }) => `${record.corpus.name} ${record.corpus.sha256}`)));
  root.append("p").attr("class", "setup-note").text(`Corpus SHA-256: ${digests.join("; ")}; training preset “${units[0].record.preset}”.`);
}
