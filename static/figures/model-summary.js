// "The models on this page": which models every figure comes from, read from the server and
// metrics.json, so the box stays true when the models are retrained.

import { formatCount, formatLarge, formatLoss, formatPercent, metricsFor, trainedOn, trainingTime } from "../format.js";

const d3 = window.d3;
const CORPUS_DESCRIPTIONS = {
  wiki100m: "text from a 2015 English Wikipedia dump, cleaned the way text8 was",
  text8: "text8, the first 100 million characters of a 2006 English Wikipedia dump",
};

export function render(element, { units, metrics, paper }) {
  const box = d3.select(element);
  box.selectAll("p").remove();

  const shapes = units.map((unit) => {
    const { hidden_size: hidden, num_layers: layers, depth } = unit.model;
    const shape = `${layers} layer${layers === 1 ? "" : "s"}${depth > 1 ? ` of depth ${depth}` : ""}`;
    return `${articleFor(unit.name)} ${unit.name} (${shape}, ${hidden} units wide)`;
  });
  box.append("p").text(`Every figure is computed live from small models trained for this page: ${listOf(shapes)}. `
    + `Each reads characters and suggests one of the same ${formatCount(units[0].model.vocabulary_size)} words.`);

  const records = units.map((unit) => ({ unit, record: metricsFor(metrics, unit.id) })).filter((item) => item.record);
  if (records.length === 0) {
    box.append("p").attr("class", "notice").text("The training record (metrics.json) is missing, so the corpus, the "
      + "amount of training and the test results of these models cannot be shown.");
  } else {
    const corpus = records[0].record.corpus.name;
    // One machine is named once; models trained on different machines, or in legs, each name their own.
    const machines = new Set(records.map(({ record }) => trainedOn(record)));
    const shared = machines.size === 1 && !machines.has(null) ? [...machines][0] : null;
    const seen = records.map(({ unit, record }) => (trainedOn(record)
      ? `${unit.name} ${formatLarge(record.characters_seen)} in ${trainingTime(record, { nameMachine: !shared })}`
      : `${unit.name} ${formatLarge(record.characters_seen)} (${trainingTime(record)})`));
    box.append("p").text(`They were trained on “${corpus}”${CORPUS_DESCRIPTIONS[corpus] ? `, ${CORPUS_DESCRIPTIONS[corpus]}` : ""}. `
      + `Characters read during training${shared ? ` on ${shared}` : ""}: ${listOf(seen)}.`);
    const results = records.map(({ unit, record }) =>
      `${unit.name} ${formatLoss(record.test.cross_entropy)} nats per character and ${formatPercent(record.test.accuracy)} accuracy`);
    const sequences = records[0].record.test.sequences;
    box.append("p").text(`On the held-out test split${sequences ? ` (its first ${formatCount(sequences)} sequences)` : ""}: ${listOf(results)}.`);
  }
  const paperWidth = Object.values(paper.models)[0].units;
  box.append("p").text(`The paper's models were larger (${paperWidth} units per layer) and were trained on text8 for `
    + `${paper.training.epochs} epochs (${d3.format(",")(paper.training.minibatches)} mini-batches) on a GPU; Table 1 sets their results beside ours.`);
}

/** "an" before a vowel sound: a vowel, or an initialism whose first letter is spoken with one (an LSTM, an RNN). */
function articleFor(name) {
  return /^[aeiou]/i.test(name) || /^[AEFHILMNORSX][A-Z]/.test(name) ? "an" : "a";
}

function listOf(items) {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}
