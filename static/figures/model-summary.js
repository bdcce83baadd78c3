// "The models on this page": which models every figure comes from, read from the server and metrics.json, so the
// box stays true when the models are retrained. Every number names its source (data-source).

import { appendProse, metricsFor, trainedOn, trainingTimeParts } from "../format.js";

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
  appendProse(box.append("p"), [
    `The figures that show a text, the example sentence or your own, are computed live by small models trained for this page: ${listOf(shapes)}. `
    + "Each reads characters and suggests one of the same ", [units[0].model.vocabulary_size, "count", `api:models.${units[0].id}.vocabulary_size`],
    " words. The charts and tables of test results come from their evaluation, recorded when they were trained.",
  ]);

  const records = units.map((unit) => ({ unit, record: metricsFor(metrics, unit.id) })).filter((item) => item.record);
  if (records.length === 0) {
    box.append("p").attr("class", "notice").text("The training record (metrics.json) is missing, so the corpus, the "
      + "amount of training and the test results of these models cannot be shown.");
  } else {
    const corpus = records[0].record.corpus.name;
    // One machine is named once; models trained on different machines, or in legs, each name their own.
    const machines = new Set(records.map(({ record }) => trainedOn(record)));
    const shared = machines.size === 1 && !machines.has(null) ? [...machines][0] : null;
    const seen = records.flatMap(({ unit, record }, index) => [
      index === 0 ? "" : index === records.length - 1 ? " and " : ", ",
      `${unit.name} `, [record.characters_seen, "large", `metrics.json:models.${unit.id}.characters_seen`],
      ...(trainedOn(record)
        ? [" in ", ...trainingTimeParts(record, unit.id, { nameMachine: !shared })]
        : [" (", ...trainingTimeParts(record, unit.id), ")"]),
    ]);
    appendProse(box.append("p"), [
      `They were trained on “${corpus}”${CORPUS_DESCRIPTIONS[corpus] ? `, ${CORPUS_DESCRIPTIONS[corpus]}` : ""}. `
      + `Characters read during training${shared ? ` on ${shared}` : ""}: `, ...seen, ".",
    ]);
    box.append("p").call((results) => testResults(results, records));
  }
  const [paperName, paperModel] = Object.entries(paper.models)[0];
  appendProse(box.append("p"), [
    "The paper's models were wider (", [paperModel.units, "count", `paper.json:models.${paperName}.units`], " units per layer) and were trained on text8 for ",
    [paper.training.epochs, "count", "paper.json:training.epochs"], " epochs (", [paper.training.minibatches, "count", "paper.json:training.minibatches"],
    " mini-batches) on a GPU; Table 1 sets their results beside ours, each tested on its own corpus.",
  ]);
}

/** "On the test split (25,391 sequences; the Vanilla RNN on its first 2,048): GRU 2.261 nats per character and 50.0 % …". */
function testResults(paragraph, records) {
  const tested = records.filter(({ record }) => record.test);
  // The paper's count (every character) where every record has it; older records only have ours.
  const everyCharacter = tested.every(({ record }) => record.test.accuracy_every_character !== undefined);
  const accuracy = everyCharacter ? "accuracy_every_character" : "accuracy";
  const counted = everyCharacter ? "counted at every character, as the paper counts" : "over words in the vocabulary only";
  const most = Math.max(...tested.map(({ record }) => record.test.sequences ?? 0));
  const fewer = tested.filter(({ record }) => record.test.sequences && record.test.sequences < most);
  const parts = ["On our test split"];
  if (most > 0) {
    parts.push(" (", [most, "count", "derived"], " sequences");
    fewer.forEach(({ unit, record }) => parts.push(`; the ${unit.name} on its first `, [record.test.sequences, "count", `metrics.json:models.${unit.id}.test.sequences`]));
    parts.push(")");
  }
  parts.push(`, top-1 accuracy ${counted}: `);
  tested.forEach(({ unit, record }, index) => {
    const path = `metrics.json:models.${unit.id}.test`;
    if (index > 0) parts.push(index === tested.length - 1 ? " and " : ", ");
    parts.push(`${unit.name} `, [record.test[accuracy], "percent", `${path}.${accuracy}`], " (cross-entropy ",
      [record.test.cross_entropy, "nats", `${path}.cross_entropy`], " nats per character)");
  });
  parts.push(".");
  appendProse(paragraph, parts);
}

/** "an" before a vowel sound: a vowel, or an initialism whose first letter is spoken with one (an LSTM, an RNN). */
function articleFor(name) {
  return /^[aeiou]/i.test(name) || /^[AEFHILMNORSX][A-Z]/.test(name) ? "an" : "a";
}

function listOf(items) {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}
