// Appendix: the data and training of the models shown, from metrics.json, beside the paper's set-up.

import { formatCount, formatDuration, formatLarge, metricsFor, trainingTime } from "../format.js";

const d3 = window.d3;
const PAPER_LABEL = "paper, text8";

export function render(element, { units: served, metrics, paper }) {
  const root = d3.select(element).text("");
  const words = formatCount(served[0].model.vocabulary_size);
  root.append("p").text("Text is cut into sequences of at most 200 characters without splitting a word, and whole sequences "
    + "are shuffled with a fixed seed into 90 % training, 5 % validation and 5 % test. Every character of a word, and the space "
    + `in front of it, has the whole word as its target; words outside the ${words} most frequent ones are not scored. `
    + "All units share the batch size and the optimiser (Adam); the table gives the characters each read.");

  const units = served.map((unit) => ({ unit, record: metricsFor(metrics, unit.id) })).filter((item) => item.record);
  if (units.length === 0) {
    root.append("p").attr("class", "notice").text("The training record (models/checkpoints/metrics.json) is missing.");
    return;
  }
  const rows = units.flatMap(({ unit, record }) => [
    { paper: false, cells: [unit.name, "ours", record.corpus.name, formatLarge(record.characters_seen), formatCount(record.steps),
      trainingTime(record)] },
    ...(unit.paperName === null ? [] : [{ paper: true, cells: [unit.paperName, PAPER_LABEL, "text8", `${paper.training.epochs} epochs`,
      formatCount(paper.training.minibatches), `${formatDuration(paper.training.wall_clock_seconds_on_authors_gpu[unit.paperName])} on a GPU`] }]),
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
    .text((cell) => cell);
  const digests = Array.from(new Set(units.map(({ record }) => `${record.corpus.name} ${record.corpus.sha256}`)));
  root.append("p").attr("class", "setup-note").text(`Corpus SHA-256: ${digests.join("; ")}; training preset “${units[0].record.preset}”.`);
}
