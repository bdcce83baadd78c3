// Figure 4's counterfactual: take an earlier word out of the text and watch each unit's guess change.
// The reader picks a word that ends before the highlighted position (from a list, or by pointing at it
// in the text) and replaces it by another word of its length drawn by the server, by a word they type,
// or by spaces. The panels then show the edited text at the same character: each unit's guesses there
// and its connectivity row, and under each panel the probability of the unit's first guess before and
// after the edit, with the change in nats (/api/counterfactual). Undo brings the view back.

import * as api from "./api.js";
import { formatPercent } from "./format.js";
import { describeCharacter, formatProbability } from "./text-panels.js";

const d3 = window.d3;
const REPLACEMENTS = [
  { id: "other_word", label: "another word of the same length" },
  { id: "typed_word", label: "a word I type" },
  { id: "spaces", label: "spaces" },
];

/** The words of a normalised text that end before `position`, nearest first: {start, end, word}. */
export function wordsBefore(text, position) {
  const words = [];
  const pattern = /[a-z]+/g;
  for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
    if (match.index + match[0].length <= position) words.push({ start: match.index, end: match.index + match[0].length, word: match[0] });
  }
  return words.reverse();
}

/** The word to offer first: an earlier occurrence of the word being typed (copy memory), else the word before it. */
function defaultWord(words, text, position) {
  const start = text.lastIndexOf(" ", position) + 1;
  const end = text.indexOf(" ", start);
  const current = text.slice(start, end === -1 ? text.length : end);
  return words.find((item) => item.word === current) ?? words[0] ?? null;
}

/**
 * Adds the counterfactual's controls to `element` and its results to each of the explorer's panels.
 * The explorer (text-panels.js) shows the edited text through `showEdited` and brings its view back with `restoreView`.
 */
export function attachCounterfactual(explorer, element) {
  // Folded until asked for: one tab stop in the figure until the reader opens it.
  const root = d3.select(element).append("details").attr("class", "counterfactual");
  root.append("summary").attr("class", "counterfactual-title").text("Take a word out: replace an earlier word and compare");
  root.append("p").attr("class", "counterfactual-intro")
    .text("Replace an earlier word and see whether each unit's guess at the highlighted position changes: connectivity says "
      + "where a unit's gradient reaches, this says whether it uses what is there.");

  const choose = root.append("div").attr("class", "controls");
  const wordLabel = choose.append("label");
  wordLabel.append("span").text("Word to replace");
  const wordSelect = wordLabel.append("select").attr("name", "replace-word");
  const pickButton = choose.append("button").attr("type", "button").attr("aria-pressed", "false").text("point at it in the text");

  const replaceSet = root.append("fieldset").attr("class", "controls");
  replaceSet.append("legend").text("Replace it with");
  const replaceLabels = replaceSet.selectAll("label").data(REPLACEMENTS).join("label");
  replaceLabels.append("input").attr("type", "radio").attr("name", `replace-with-${Math.random().toString(36).slice(2)}`)
    .attr("value", (item) => item.id)
    .property("checked", (item) => item.id === "other_word");
  replaceLabels.append("span").text((item) => item.label);
  const typedBox = replaceSet.append("input").attr("type", "text").attr("name", "typed-word").attr("maxlength", 40)
    .attr("aria-label", "The word to put in").attr("spellcheck", "false").attr("autocomplete", "off");

  const actions = root.append("div").attr("class", "controls");
  const replaceButton = actions.append("button").attr("type", "button").attr("class", "replace").text("Replace");
  const drawButton = actions.append("button").attr("type", "button").attr("class", "draw-again").text("draw another word")
    .property("hidden", true);
  const undoButton = actions.append("button").attr("type", "button").attr("class", "undo").text("Undo").property("disabled", true);
  const status = root.append("p").attr("class", "status").attr("role", "status").attr("aria-live", "polite");
  // A line under each panel, the panels of units added later included (placed by showUnits).
  const results = () => explorer.panels.selectAll("p.counterfactual-result").data((unit) => [unit]).join("p").attr("class", "counterfactual-result");
  results();

  // The edit on screen: what restoreView needs, the edited text the explorer shows, the question asked and the view it
  // was asked from.
  let shown = null;
  let picking = false;
  let draw = 0;
  let pending = 0;

  const replaceWith = () => replaceLabels.select("input").filter(function checked() { return this.checked; }).datum().id;

  function listWords() {
    if (shown) return;
    const words = wordsBefore(explorer.text, explorer.position);
    const previous = Number(wordSelect.property("value"));
    wordSelect.selectAll("option").data(words, (item) => item.start).join("option")
      .attr("value", (item) => item.start)
      .text((item) => `“${item.word}”, ${explorer.position - item.end + 1} characters back`);
    const keep = words.find((item) => item.start === previous);
    const chosen = keep ?? defaultWord(words, explorer.text, explorer.position);
    if (chosen) wordSelect.property("value", chosen.start);
    replaceButton.property("disabled", words.length === 0);
    status.text(words.length === 0 && explorer.text ? "No word ends before the highlighted position: move it further into the text." : "")
      .classed("error", false);
    markChosen();
  }

  function chosenWord() {
    const start = Number(wordSelect.property("value"));
    return wordsBefore(explorer.text, explorer.position).find((item) => item.start === start) ?? null;
  }

  /** Outlines the word chosen for replacement in every panel (or the replaced span of the edited text). */
  function markChosen() {
    const span = shown ? shown.span : chosenWord();
    explorer.lines.selectAll("span.char")
      .classed("chosen-word", (item) => !shown && span !== null && item.position >= span.start && item.position < span.end)
      .classed("edited", (item) => shown !== null && item.position >= span.start && item.position < span.end);
  }

  /** The view an edit is asked from: the explorer's, or while an edit is shown, the one it replaced. */
  function base() {
    if (shown) return shown.base;
    const word = chosenWord();
    return { text: explorer.text, position: explorer.position, word: explorer.word, method: explorer.method, start: word?.start };
  }

  async function replace() {
    const from = base();
    if (from.start === undefined) return;
    const mode = replaceWith();
    const typed = typedBox.property("value").trim();
    if (mode === "typed_word" && !typed) {
      status.text("Type the word to put in first.").classed("error", true);
      typedBox.node().focus();
      return;
    }
    await ask({ text: from.text, position: from.position, replaceAt: from.start, replaceWith: mode, typedWord: typed, draw, word: from.word, method: from.method }, from);
  }

  /** Asks the question for every unit shown (the server is asked about those it has not answered for) and shows the answer. */
  async function ask(question, from) {
    const request = ++pending;
    status.text("Computing the edited text…").classed("error", false);
    try {
      const answer = await api.counterfactual({ ...question, models: explorer.units.map((unit) => unit.id) });
      if (request !== pending) return;
      show(answer, question, from);
    } catch (error) {
      if (request === pending) status.text(`No counterfactual: ${error.message}`).classed("error", true);
    }
  }

  function show(answer, question, from) {
    const restore = shown ? shown.restore : null;
    const position = answer.edited_position;
    const rows = Object.fromEntries(Object.entries(answer.models).map(([id, result]) => [id, result.connectivity]));
    const guesses = Object.fromEntries(Object.entries(answer.models).map(([id, result]) => [id, result.after]));
    const token = explorer.showEdited(answer.edited_text, position, rows, guesses);
    const { replaced } = answer;
    shown = {
      restore: restore ?? token,
      base: from,
      question,
      text: answer.edited_text,
      span: { start: replaced.start, end: replaced.start + replaced.replacement.length },
    };
    const replacement = replaced.replacement.trim() ? `“${replaced.replacement}”` : "spaces";
    status.classed("error", false)
      .text(`Showing the text with ${replacement} for “${replaced.original}”, at the same character (${describeCharacter(answer.edited_text, position)}). `
        + "Undo brings the text back.");
    results().each(function result(unit) {
      const found = answer.models[unit.id];
      const line = d3.select(this).text("");
      if (!found) return;
      line.append("span").text(`First guess before, “${found.word}”: `);
      line.append("span").attr("class", "before").text(formatProbability(found.probability_before));
      line.append("span").text(" → after ");
      line.append("span").attr("class", "after").text(formatProbability(found.probability_after));
      line.append("span").text(", ");
      line.append("span").attr("class", "change").attr("data-nats", found.change_nats).text(`${formatNats(found.change_nats)} nats`);
      line.append("span").text(`. Its guesses before: ${found.before.map((item) => `${item.word} ${formatProbability(item.probability)}`).join(", ")}.`);
    });
    undoButton.property("disabled", false);
    wordSelect.property("disabled", true);
    pickButton.property("disabled", true);
    drawButton.property("hidden", replaced.replacement.trim() === "" || replaceWith() !== "other_word");
    markChosen();
  }

  function undo() {
    ++pending;
    if (shown && explorer.text === shown.text) explorer.restoreView(shown.restore);
    shown = null;
    results().text("");
    undoButton.property("disabled", true);
    wordSelect.property("disabled", false);
    pickButton.property("disabled", false);
    drawButton.property("hidden", true);
    status.text("").classed("error", false);
    listWords();
  }

  function setPicking(on) {
    picking = on;
    pickButton.attr("aria-pressed", String(on)).text(on ? "now click or tap a word" : "point at it in the text");
  }

  // While an edit is shown the highlighted position stays where the edit was asked; while picking, a click on the
  // text chooses a word instead of a position. Both listen before the explorer's own handlers (capture phase).
  const panelsNode = explorer.grid.node();
  panelsNode.addEventListener("pointermove", (event) => {
    if (shown && explorer.text !== shown.text) undo(); // the explorer loaded another text meanwhile
    if ((shown || picking) && event.target.closest?.(".char-line")) event.stopPropagation();
  }, true);
  panelsNode.addEventListener("keydown", (event) => {
    if (shown && explorer.text === shown.text && event.target.closest?.(".char-line") && event.key !== "Tab") {
      event.stopPropagation();
      status.text("The position stays where the edit was made; Undo to move it again.");
    }
  }, true);
  // The words on offer follow the explorer's text and position: every repaint, a new text's included, sets the panels'
  // aria-valuenow.
  new MutationObserver(listWords).observe(panelsNode, { subtree: true, attributes: true, attributeFilter: ["aria-valuenow"] });
  panelsNode.addEventListener("click", (event) => {
    if (shown && explorer.text !== shown.text) undo();
    const char = event.target.closest?.(".char");
    if (!char || !(shown || picking)) return;
    event.stopPropagation();
    if (!picking) return;
    const position = Number(char.dataset.position);
    const word = wordsBefore(explorer.text, explorer.position).find((item) => position >= item.start && position < item.end);
    if (word) {
      wordSelect.property("value", word.start);
      status.text(`“${word.word}” chosen.`).classed("error", false);
      setPicking(false);
      markChosen();
      replaceButton.node().focus();
    } else {
      status.text("Choose a word that ends before the highlighted position: a unit reads forwards.").classed("error", true);
    }
  }, true);

  wordSelect.on("focus", listWords).on("pointerdown", listWords).on("change", markChosen);
  pickButton.on("click", () => {
    listWords();
    setPicking(!picking);
  });
  replaceLabels.select("input").on("change", () => {
    if (replaceWith() === "typed_word") typedBox.node().focus();
  });
  typedBox.on("input", () => replaceLabels.select("input").property("checked", (item) => item.id === "typed_word"))
    .on("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        replace();
      }
    });
  replaceButton.on("click", () => {
    draw = 0;
    replace();
  });
  drawButton.on("click", () => {
    draw += 1;
    replace();
  });
  undoButton.on("click", undo);
  listWords();
  return {
    refresh: listWords,
    undo,
    /** After the units shown change: an edit on screen is asked again for them, which fetches the added units' answers only. */
    showUnits() {
      results();
      if (shown && explorer.text === shown.text) ask(shown.question, shown.base);
    },
  };
}

/** A change in nats with its sign, three decimals as every figure writes nats: "−1.183", "+0.021". */
function formatNats(value) {
  return `${value < 0 ? "−" : "+"}${Math.abs(value).toFixed(3)}`;
}

/**
 * The evaluation's copy test on the example sentence (metrics.json's intervention.example), for the walkthrough note at
 * `position`: each unit's probability of the word there with its first occurrence and with it replaced; "" where none is recorded.
 */
export function copyTestNote(units, position) {
  const recorded = units.filter((unit) => unit.model.intervention?.example?.position === position);
  if (recorded.length === 0) return "";
  const { word, replacement } = recorded[0].model.intervention.example;
  const parts = recorded.map((unit) => {
    const example = unit.model.intervention.example;
    return `${unit.name} ${formatPercent(example.probability_with)} with it and ${formatPercent(example.probability_without)} `
      + `without (${formatNats(example.gain)} nats)`;
  });
  return ` The evaluation's copy test, “${replacement}” in place of the first “${word}”: the probability of “${word}” here is, `
    + `${parts.join("; ")}.`;
}
