// Figure 4: the connectivity explorer, for the units the reader chose (static/unit-choice.js). The sentence is
// editable, the method and colour scale are selectable, the view is mirrored in the URL, and the walkthrough notes are
// written from the chosen models' own output on the example sentence. A switch shows the paper's published rows for
// the example sentence in the same panels instead of our models'.

import * as api from "../api.js";
import { renderLegend, SHADINGS } from "../connectivity-colour.js";
import { attachCounterfactual, copyTestNote } from "../counterfactual.js";
import { saveFile, toCSV } from "../download.js";
import { formatPercent } from "../format.js";
import { readViewState, takeRequestedMark, VIEW_EVENT, writeViewState } from "../permalink.js";
import { earlierOccurrence, shareBeforeWord, shareOn } from "../reach.js";
import { ConnectivityExplorer, describeCharacter, formatProbability, wordAt } from "../text-panels.js";
import { renderUnitPicker } from "../unit-choice.js";

const d3 = window.d3;
const METHODS = [
  { id: "gradient", label: "gradient² (the paper's)" },
  { id: "gradient_x_input", label: "gradient × input" },
  { id: "integrated_gradients", label: "integrated gradients" },
];
const SOURCES = [
  { id: "ours", label: "our models" },
  { id: "paper", label: "the paper's published models" },
];
const SCALES = [
  { id: "unit", label: "per unit" },
  { id: "shared", label: "shared" },
];
// The walkthrough notes name the farthest character whose value is at least this fraction of the row's maximum.
const STRONG_FRACTION = 0.3;

export async function render(element, { choice, paper, limits }) {
  const exampleText = paper.connectivity.example_text;
  // The units the paper published rows for; the other units' panels say they have none.
  const paperUnits = (units) => units.filter((unit) => unit.paperName !== null);
  const defaults = { text: exampleText, word: null, method: "gradient", scale: "unit", shading: "linear", source: "ours" };
  const body = d3.select(element).select(".figure-body").text("");

  const form = body.append("form").attr("class", "sentence-form");
  const textBox = form.append("textarea").attr("name", "sentence").attr("rows", 3)
    // Normalising adds a leading space, and the server's limit applies to the normalised text too.
    .attr("maxlength", limits.max_text_chars - 1)
    .attr("aria-label", "Sentence to analyse").attr("spellcheck", "false");
  form.append("button").attr("type", "submit").text("Compute");
  const exampleButton = form.append("button").attr("type", "button").attr("class", "link").text("example sentence");

  const controls = body.append("div").attr("class", "controls");
  const sourceSet = controls.append("fieldset").attr("class", "source-toggle");
  sourceSet.append("legend").text("Show");
  const sourceLabels = sourceSet.selectAll("label").data(SOURCES).join("label");
  sourceLabels.append("input").attr("type", "radio").attr("name", `source-${element.id}`).attr("value", (source) => source.id);
  sourceLabels.append("span").text((source) => source.label);
  const methodLabel = controls.append("label");
  methodLabel.append("span").text("Method");
  const methodSelect = methodLabel.append("select").attr("name", "method");
  methodSelect.selectAll("option").data(METHODS).join("option").attr("value", (method) => method.id).text((method) => method.label);
  const scaleSet = controls.append("fieldset").attr("class", "scale-toggle");
  scaleSet.append("legend").text("Colour scale");
  const scaleLabels = scaleSet.selectAll("label").data(SCALES).join("label");
  scaleLabels.append("input").attr("type", "radio").attr("name", `scale-${element.id}`).attr("value", (scale) => scale.id);
  scaleLabels.append("span").text((scale) => scale.label);
  const shadingLabel = controls.append("label");
  shadingLabel.append("span").text("Shading");
  const shadingSelect = shadingLabel.append("select").attr("name", "shading");
  shadingSelect.selectAll("option").data(SHADINGS).join("option").attr("value", (shading) => shading.id).text((shading) => shading.label);
  const downloads = controls.append("span").attr("class", "download-buttons");
  downloads.append("span").text("Download ");
  const downloadButton = (format) => downloads.append("button").attr("type", "button").attr("data-download", format).text(format.toUpperCase());
  const jsonButton = downloadButton("json");
  const csvButton = downloadButton("csv");
  const svgButton = downloadButton("svg");
  const legend = renderLegend(body.append("div").attr("class", "controls").node(), "");
  const publishedNote = body.append("p").attr("class", "published-note").attr("hidden", true);
  renderUnitPicker(body, choice);

  const explorer = new ConnectivityExplorer(body.append("div").node(), {
    units: choice.units,
    limits,
    overview: true,
    onChange: (state) => {
      writeViewState(state, defaults);
      updateControls(state);
    },
  });
  const counterfactual = attachCounterfactual(explorer, body.append("div").node());

  function updateControls(state) {
    const published = state.source === "paper";
    sourceSet.property("hidden", paperUnits(explorer.units).length === 0);
    sourceLabels.select("input").property("checked", (source) => source.id === state.source);
    methodSelect.property("value", published ? "gradient" : state.method).property("disabled", published);
    publishedNote.property("hidden", !published);
    scaleLabels.select("input").property("checked", (scale) => scale.id === state.scale);
    shadingSelect.property("value", state.shading);
    const signed = !published && state.method === "integrated_gradients";
    const maximum = signed ? "largest magnitude" : "maximum";
    legend.update(state.shading, `fraction of ${state.scale === "shared" ? `the ${maximum} of all units` : `each unit's own ${maximum}`}`, signed);
  }

  // The paper's rows of the units shown, each fetched the first time it is shown.
  async function showPublished(position) {
    const units = paperUnits(explorer.units);
    const files = await Promise.all(units.map((unit) => api.loadPaperConnectivity(unit.id)));
    publishedNote.text(`Showing the paper's published models (${files[0].models}), not ours: their connectivity (gradient², `
      + "for the word in the text) and top three guesses on the example sentence. Editing the sentence switches back to our models.");
    explorer.showPublished(exampleText, Object.fromEntries(units.map((unit, index) => [unit.id, files[index].positions])),
      { position: position ?? explorer.position, label: files[0].models });
  }

  async function show(state) {
    const text = state.text ?? exampleText;
    const method = METHODS.some((item) => item.id === state.method) ? state.method : defaults.method;
    // The paper's data covers the example sentence and the word in it only.
    const source = state.source === "paper" && paperUnits(explorer.units).length > 0 && text === exampleText && !state.word ? "paper" : "ours";
    explorer.scale = SCALES.some((item) => item.id === state.scale) ? state.scale : defaults.scale;
    explorer.shading = SHADINGS.some((item) => item.id === state.shading) ? state.shading : defaults.shading;
    if (document.activeElement !== textBox.node()) textBox.property("value", text.trim());
    updateControls({ ...explorer.state(), method, source });
    try {
      if (source === "paper") {
        await showPublished(state.position);
      } else if (text !== explorer.text || method !== explorer.method || explorer.source !== "ours") {
        await explorer.load(text, { method, position: state.position, word: state.word });
      } else {
        explorer.select(state.position ?? explorer.position);
        if (state.word) await explorer.chooseWord(state.word);
        else explorer.paint();
      }
    } catch (error) {
      explorer.setStatus(`Could not compute this view: ${error.message}`, true);
    }
    // A link in the prose can point at a word while the position stays the one it discusses.
    if (state.mark !== null && state.mark !== undefined && explorer.text === exampleText) explorer.markWord(state.mark);
  }

  form.on("submit", async (event) => {
    event.preventDefault();
    const typed = textBox.property("value");
    if (!/[a-z0-9]/i.test(typed)) {
      explorer.setStatus("Type some words first: the models only read letters, digits and spaces.", true);
      return;
    }
    await show({ ...explorer.state(), text: typed, position: null, word: null });
    writeViewState(explorer.state(), defaults);
  });
  exampleButton.on("click", async () => {
    textBox.property("value", exampleText.trim());
    await show({ ...explorer.state(), text: exampleText, position: paper.connectivity.walkthrough_indices["1"], word: null });
    writeViewState(explorer.state(), defaults);
  });
  methodSelect.on("change", async () => {
    await show({ ...explorer.state(), method: methodSelect.property("value"), word: explorer.word });
    writeViewState(explorer.state(), defaults);
  });
  scaleLabels.select("input").on("change", (event, scale) => explorer.setScale(scale.id));
  shadingSelect.on("change", () => explorer.setShading(shadingSelect.property("value")));
  sourceLabels.select("input").on("change", async (event, source) => {
    await show({ ...explorer.state(), source: source.id, word: null });
    writeViewState(explorer.state(), defaults);
  });
  // The paper's rows exist for the example sentence only, so editing it goes back to our models.
  textBox.on("input", async () => {
    if (explorer.source !== "paper") return;
    await show({ ...explorer.state(), source: "ours" });
    writeViewState(explorer.state(), defaults);
  });

  jsonButton.on("click", () => {
    const state = explorer.state();
    saveFile("connectivity.json", "application/json", JSON.stringify({ ...state, models: explorer.currentRows() }, null, 1));
  });
  csvButton.on("click", () => {
    const rows = explorer.currentRows();
    const lines = explorer.units.flatMap((unit) => Array.from(explorer.text, (char, position) => [
      unit.id, rows[unit.id].word, explorer.method, explorer.position, position, char,
      rows[unit.id].connectivity?.[position], rows[unit.id].normalised?.[position],
    ]));
    saveFile("connectivity.csv", "text/csv",
      toCSV(["model", "word", "method", "output_position", "input_position", "char", "connectivity", "normalised"], lines));
  });
  svgButton.on("click", () => {
    const { method, scale, shading } = explorer.state();
    const caption = [
      METHODS.find((item) => item.id === method).label,
      scale === "shared" ? "one scale for all units" : "each unit scaled to its own maximum",
      `${SHADINGS.find((item) => item.id === shading).label} shading`,
    ].join("; ");
    saveFile("connectivity.svg", "image/svg+xml", explorer.toSVG(caption));
  });

  window.addEventListener(VIEW_EVENT, (event) => show({ ...event.detail, mark: takeRequestedMark() }));

  // The notes speak of the units shown; only the last units asked for may write them.
  let notesFor = 0;
  const writeNotes = (units) => {
    const request = ++notesFor;
    writeWalkthroughNotes(units, paper, () => request === notesFor).catch((error) => console.error("walkthrough notes:", error));
  };
  choice.onChange(async (units) => {
    writeNotes(units);
    await explorer.setUnits(units);
    counterfactual.showUnits();
    // The paper's view takes the added units' published rows, or goes back to ours when none of them has any.
    if (explorer.source === "paper") {
      await show(explorer.state());
      writeViewState(explorer.state(), defaults);
    } else {
      updateControls(explorer.state());
    }
  });

  const initial = readViewState();
  await show({ ...initial, position: initial.position ?? paper.connectivity.walkthrough_indices["1"], mark: takeRequestedMark() });
  writeNotes(choice.units);
}

/**
 * Fills the grey notes of the walkthrough with what the units shown do at each step's position. Like the
 * paper's rows, ours are taken for the word in the text where the model knows that word (it suggests
 * it somewhere in the sentence: asking for a word outside its vocabulary would be refused), else for its
 * own first guess, and the note says which: how much of each row lies before the current word, beside
 * the same share in the paper's row, and the farthest character whose value reaches STRONG_FRACTION of
 * the row's maximum.
 */
async function writeWalkthroughNotes(units, paper, isCurrent) {
  const text = paper.connectivity.example_text;
  const suggestions = await api.autocomplete({ text, models: units.map((unit) => unit.id), positions: "all" });
  const suggested = Object.fromEntries(units.map((unit) => [unit.id,
    new Set(suggestions.models[unit.id].flatMap((entry) => entry.suggestions.map((suggestion) => suggestion.word)))]));
  // The paper's shares come with its memory profile (2 KB), not from its rows (60 KB a unit), which only its switch loads.
  const paperShares = (await api.loadPaperMemory()).units;
  const notes = [...document.querySelectorAll("[data-walkthrough-note]")];
  await Promise.all(notes.map(async (note) => {
    const position = paper.connectivity.walkthrough_indices[note.dataset.walkthroughNote];
    const word = wordAt(text, position);
    // The earlier word the note is about (its data-about), whose share of each row the note gives.
    const about = note.dataset.about ? earlierOccurrence(text, note.dataset.about, position) : null;
    const rows = await Promise.all(units.map(async (unit) => {
      const known = suggested[unit.id].has(word);
      // Figure 4's matrix of the example sentence, already asked for, holds the row for the model's own first guess: the
      // row for the word where that guess is the word, and the one to show where the model does not know the word.
      const ownGuess = !known || suggestions.models[unit.id][position].suggestions[0].word === word;
      const answer = await api.connectivity({ text, model: unit.id, positions: ownGuess ? "all" : [position], ...(ownGuess ? {} : { word }) });
      return { known, values: ownGuess ? answer.rows[position].connectivity : answer.rows[0].connectivity };
    }));
    const parts = units.map((unit, index) => {
      const best = suggestions.models[unit.id][position].suggestions[0];
      const { known, values } = rows[index];
      const maximum = d3.max(values);
      const farthest = values.findIndex((value) => value >= STRONG_FRACTION * maximum);
      const distance = position - farthest;
      const reach = distance === 0 ? "is the current character" : `is ${distance} back, ${describeCharacter(text, farthest)}`;
      const theirs = unit.paperName === null ? undefined : paperShares[unit.id]?.before_word_by_position[position];
      const whose = known ? "its row" : `its row for “${best.word}” (it never suggests “${word}”, so it may not know the word)`;
      return `${unit.name} guesses “${best.word}” (${formatProbability(best.probability)}); `
        + `${formatProbability(shareBeforeWord(values, text, position))} of ${whose} lies before the current word`
        + (theirs === undefined ? "" : ` (the paper's ${unit.paperName}${known ? "" : `, for “${word}”`}: ${formatProbability(theirs)})`)
        + `, and its farthest character at ${formatProbability(STRONG_FRACTION)} of the row's maximum or more ${reach}`
        + (about ? `; ${formatPercent(shareOn(values, about, position))} of it lies on the earlier “${note.dataset.about}”` : "");
    });
    if (!isCurrent()) return;
    note.textContent = `Our models here, for “${word}”, the word in the text, as in the paper's rows: ${parts.join("; ")}.`
      + copyTestNote(units, position);
  }));
}
