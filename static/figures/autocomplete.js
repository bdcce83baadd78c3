// Figure 3: type, and the top-3 guesses of each unit the reader chose (static/unit-choice.js) for the word being
// typed update per keystroke. Each keystroke sends one `positions: "last"` request; the server extends its cached
// state by the new characters instead of rerunning the text. Only the newest request may paint.

import * as api from "../api.js";
import { revealFigure } from "../motion.js";
import { requestView } from "../permalink.js";
import { renderSuggestions, unitPanels } from "../text-panels.js";
import { renderUnitPicker } from "../unit-choice.js";

const d3 = window.d3;

export async function render(element, { choice, limits }) {
  const startText = (await api.loadDemo()).prefix;
  const body = d3.select(element).select(".figure-body").text("");

  const inputId = `${element.id}-input`;
  body.append("label").attr("for", inputId).attr("class", "status").text("Type here:");
  const input = body.append("input").attr("type", "text").attr("id", inputId).attr("class", "autocomplete-input")
    // Normalising adds a leading space, and the server's limit applies to the normalised text too.
    .attr("autocomplete", "off").attr("autocapitalize", "off").attr("spellcheck", "false").attr("maxlength", limits.max_text_chars - 1)
    .property("value", startText);
  const links = body.append("div").attr("class", "controls");
  const removeLetters = links.append("button").attr("type", "button").attr("class", "link").text("remove the last letters");
  const reset = links.append("button").attr("type", "button").attr("class", "link").text("reset");
  const modelSees = body.append("p").attr("class", "model-sees");
  const status = body.append("p").attr("class", "status").attr("role", "status").attr("aria-live", "polite");
  renderUnitPicker(body, choice);

  const grid = body.append("div");
  const buildPanel = (panel) => {
    const heading = panel.append("p").attr("class", "panel-title");
    heading.append("span").attr("class", "unit-swatch").attr("aria-hidden", "true");
    heading.append("span").text((unit) => unit.name);
    panel.append("ul").attr("class", "suggestions").attr("aria-label", (unit) => `${unit.name}'s top guesses`);
  };
  let lists = unitPanels(grid, choice.units, buildPanel).select(".suggestions");

  let latest = 0;
  let controller = null;

  /** Every chosen unit's guesses for the text in the box: a keystroke's request, which replaces the one before. */
  async function update() {
    const request = ++latest;
    controller?.abort();
    controller = new AbortController();
    const text = input.property("value");
    if (!/[a-z0-9]/i.test(text)) {
      status.text("Type a few letters to see suggestions.").classed("error", false);
      clearResults();
      return;
    }
    try {
      const response = await api.autocomplete({ text, positions: "last", models: choice.units.map((unit) => unit.id), signal: controller.signal });
      if (request !== latest) return;
      status.text("").classed("error", false);
      modelSees.text("").append("span").text("The models read: ");
      modelSees.append("code").text(response.text);
      fill(response);
    } catch (error) {
      if (error.name === "AbortError") return;
      if (request !== latest) return;
      // Suggestions for an earlier text must not stay beside the error as if they answered this one.
      status.text(`Suggestions unavailable: ${error.message}`).classed("error", true);
      clearResults();
    }
  }

  /** The guesses of units just added, for the text in the box; the request of a keystroke in flight goes on. */
  async function suggestFor(units) {
    const text = input.property("value");
    if (!/[a-z0-9]/i.test(text)) return;
    try {
      const response = await api.autocomplete({ text, positions: "last", models: units.map((unit) => unit.id) });
      // A keystroke since then asks for every chosen unit itself.
      if (input.property("value") === text) fill(response);
    } catch (error) {
      status.text(`Suggestions unavailable: ${error.message}`).classed("error", true);
    }
  }

  /** Fills the lists of the units the response answers for. */
  function fill(response) {
    const position = response.text.length - 1;
    lists.filter((unit) => Object.hasOwn(response.models, unit.id)).each(function fillList(unit) {
      const last = response.models[unit.id].at(-1);
      renderSuggestions(this, last.suggestions, {
        onChoose: (word) => {
          requestView({ text: response.text, position, word });
          // Focus follows, so a keyboard reader is not left on a button scrolled out of view.
          revealFigure(document.getElementById("fig-connectivity"), ".char-line");
        },
      });
    });
  }

  function clearResults() {
    modelSees.text("");
    lists.selectAll("li").remove();
  }

  choice.onChange((units) => {
    const added = units.filter((unit) => lists.filter((shown) => shown.id === unit.id).empty());
    lists = unitPanels(grid, units, buildPanel).select(".suggestions");
    if (added.length) suggestFor(added);
  });
  input.on("input", update);
  removeLetters.on("click", () => {
    // Back to the space before the current word: what do the units expect before any letter is typed?
    const text = input.property("value");
    input.property("value", text.endsWith(" ") ? text.trimEnd().replace(/\S+$/, "") : text.replace(/\S+$/, ""));
    update();
  });
  reset.on("click", () => {
    input.property("value", startText);
    update();
  });

  await update();
}
