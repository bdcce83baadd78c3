// Figure 4: the connectivity explorer. The sentence is editable, the method and colour scale are
// selectable, the view is mirrored in the URL, and the walkthrough notes are written from the
// models' own output on the example sentence.

import * as api from "../api.js";
import { normaliseRows, renderLegend } from "../connectivity-colour.js";
import { saveFile, toCSV } from "../download.js";
import { readViewState, VIEW_EVENT, writeViewState } from "../permalink.js";
import { ConnectivityExplorer, describeCharacter, formatProbability } from "../text-panels.js";
import { loadedUnits } from "../units.js";

const d3 = window.d3;
const METHODS = [
  { id: "gradient", label: "gradient² (the paper's)" },
  { id: "gradient_x_input", label: "gradient × input" },
  { id: "integrated_gradients", label: "integrated gradients" },
];
const SCALES = [
  { id: "unit", label: "per unit" },
  { id: "shared", label: "shared" },
];
const MAX_TEXT_LENGTH = 400;
// A character counts as "strongly connected" in the walkthrough notes above this fraction of the row's maximum.
const STRONG_FRACTION = 0.3;

export async function render(element, { models, paper }) {
  const exampleText = paper.connectivity.example_text;
  const units = loadedUnits(models);
  const defaults = { text: exampleText, word: null, method: "gradient", scale: "unit" };
  const body = d3.select(element).select(".figure-body").text("");

  const form = body.append("form").attr("class", "sentence-form");
  const textBox = form.append("textarea").attr("name", "sentence").attr("rows", 2).attr("maxlength", MAX_TEXT_LENGTH)
    .attr("aria-label", "Sentence to analyse").attr("spellcheck", "false");
  form.append("button").attr("type", "submit").text("Compute");
  const exampleButton = form.append("button").attr("type", "button").attr("class", "link").text("example sentence");

  const controls = body.append("div").attr("class", "controls");
  const methodLabel = controls.append("label");
  methodLabel.append("span").text("Method");
  const methodSelect = methodLabel.append("select").attr("name", "method");
  methodSelect.selectAll("option").data(METHODS).join("option").attr("value", (method) => method.id).text((method) => method.label);
  const scaleSet = controls.append("fieldset").attr("class", "scale-toggle");
  scaleSet.append("legend").text("Colour scale");
  const scaleLabels = scaleSet.selectAll("label").data(SCALES).join("label");
  scaleLabels.append("input").attr("type", "radio").attr("name", `scale-${element.id}`).attr("value", (scale) => scale.id);
  scaleLabels.append("span").text((scale) => scale.label);
  const downloads = controls.append("span").attr("class", "download-buttons");
  downloads.append("span").text("Download ");
  const downloadButton = (format) => downloads.append("button").attr("type", "button").attr("data-download", format).text(format.toUpperCase());
  const jsonButton = downloadButton("json");
  const csvButton = downloadButton("csv");
  const svgButton = downloadButton("svg");
  const legendNote = renderLegend(body.append("div").attr("class", "controls").node(), "");

  const explorer = new ConnectivityExplorer(body.append("div").node(), {
    units,
    onChange: (state) => {
      writeViewState(state, defaults);
      updateControls(state);
    },
  });

  function updateControls(state) {
    methodSelect.property("value", state.method);
    scaleLabels.select("input").property("checked", (scale) => scale.id === state.scale);
    legendNote.text(state.scale === "shared" ? "one scale for all three units" : "each unit scaled to its own maximum");
  }

  async function show(state) {
    const text = state.text ?? exampleText;
    const method = METHODS.some((item) => item.id === state.method) ? state.method : defaults.method;
    explorer.scale = SCALES.some((item) => item.id === state.scale) ? state.scale : defaults.scale;
    if (document.activeElement !== textBox.node()) textBox.property("value", text.trim());
    updateControls({ ...explorer.state(), method });
    try {
      if (text !== explorer.text || method !== explorer.method) {
        await explorer.load(text, { method, position: state.position, word: state.word });
      } else {
        explorer.select(state.position ?? explorer.position);
        if (state.word) await explorer.chooseWord(state.word);
        else explorer.paint();
      }
    } catch (error) {
      explorer.setStatus(`Could not compute this view: ${error.message}`, true);
    }
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

  jsonButton.on("click", () => {
    const state = explorer.state();
    saveFile("connectivity.json", "application/json", JSON.stringify({ ...state, models: explorer.currentRows() }, null, 1));
  });
  csvButton.on("click", () => {
    const rows = explorer.currentRows();
    const lines = units.flatMap((unit) => Array.from(explorer.text, (char, position) => [
      unit.id, rows[unit.id].word, explorer.method, explorer.position, position, char,
      rows[unit.id].connectivity?.[position], rows[unit.id].normalised?.[position],
    ]));
    saveFile("connectivity.csv", "text/csv",
      toCSV(["model", "word", "method", "output_position", "input_position", "char", "connectivity", "normalised"], lines));
  });
  svgButton.on("click", () => saveFile("connectivity.svg", "image/svg+xml", explorer.toSVG()));

  window.addEventListener(VIEW_EVENT, (event) => show(event.detail));

  const initial = readViewState();
  await show({ ...initial, position: initial.position ?? paper.connectivity.walkthrough_indices["1"] });
  writeWalkthroughNotes(units, paper).catch((error) => console.error("walkthrough notes:", error));
}

/** Fills the grey notes of the walkthrough with what our models do at each step's position. */
async function writeWalkthroughNotes(units, paper) {
  const text = paper.connectivity.example_text;
  const suggestions = await api.autocomplete({ text, models: units.map((unit) => unit.id), positions: "all" });
  const matrices = await Promise.all(units.map((unit) => api.connectivity({ text, model: unit.id, positions: "all" })));
  document.querySelectorAll("[data-walkthrough-note]").forEach((note) => {
    const position = paper.connectivity.walkthrough_indices[note.dataset.walkthroughNote];
    const rows = Object.fromEntries(units.map((unit, index) => [unit.id, matrices[index].rows[position].connectivity]));
    const normalised = normaliseRows(rows, "unit");
    const parts = units.map((unit) => {
      const best = suggestions.models[unit.id][position].suggestions[0];
      const reach = normalised[unit.id].findIndex((value) => value >= STRONG_FRACTION);
      const distance = position - reach;
      const where = distance === 0 ? "stays on the current character" :
        `reaches back ${distance} character${distance === 1 ? "" : "s"}, to ${describeCharacter(text, reach)}`;
      return `${unit.name} guesses “${best.word}” (${formatProbability(best.probability)}) and its strong connectivity ${where}`;
    });
    note.textContent = `Our models here: ${parts.join("; ")}.`;
  });
}
