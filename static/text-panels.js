// Synced panels of coloured characters, one per served unit, shared by Figure 1 and Figure 4.
// The explorer owns the data of one text (suggestions and full connectivity matrices per unit),
// the selected position and an optional chosen word, and repaints every panel on each change.

import * as api from "./api.js";
import { connectivityColour, legendPosition, legendStops, legendTicks, normaliseRows, shadingById, textColourOn } from "./connectivity-colour.js";
import { formatPercent, NBSP } from "./format.js";
import { paintUnitColour } from "./units.js";

const d3 = window.d3;
const ROW_REQUEST_DELAY_MS = 120;
// On a narrow screen each panel shows a window of WINDOW_LINES lines of the text, wrapped between words,
// in characters of at least TARGET_PX square, so the panels fit one screen and a tap lands on the
// character meant; above it the whole text, small, shows where the row lies outside the window.
const NARROW = window.matchMedia("(max-width: 760px)");
const WINDOW_LINES = 2;
const TARGET_PX = 24;
// An integrated-gradients row that misses its score change by more than this is drawn with a warning
// (the server refines the path until it misses by 2 % at most, unless its work limit stops it first).
export const COMPLETENESS_WARNING = 0.05;
const KEY_STEPS = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1, PageDown: 10, PageUp: -10 };

export class ConnectivityExplorer {
  /**
   * @param element where the panels go
   * @param units the units shown (static/unit-choice.js): one panel each, in this order; setUnits changes them
   * @param limits the API's limits (the page's #limits data block): which matrices it serves whole
   * @param onChange called with state() after the reader (or code) changes the view
   * @param onInteract called when the reader selects a position or a word with pointer or keyboard
   * @param overview whether narrow screens show the whole text, small, above each panel's window
   */
  constructor(element, { units, limits, onChange = () => {}, onInteract = () => {}, overview = false }) {
    this.limits = limits;
    this.onChange = onChange;
    this.onInteract = onInteract;
    this.overview = overview;
    this.text = "";
    this.method = "gradient";
    this.scale = "unit";
    this.shading = "linear";
    this.position = 0;
    this.word = null;
    // Per unit id, for the text shown: a unit missing from `suggestions` has not been asked about it yet (fetchMissing).
    this.matrices = {};
    this.perRow = false;
    this.rowTimer = null;
    this.suggestions = {};
    this.wordRows = {};
    // Every change of text or source counts one up; `settled` is the count whose view is complete, so a unit added
    // while a text loads is left to that load to fetch.
    this.loading = 0;
    this.settled = 0;
    // Narrow screens: the first line of the window, and the text's lines (wrapPositions) for the panel's width.
    this.windowLine = 0;
    this.wrapped = null;
    // The characters a link in the prose points at ({start, end}, end excluded), outlined in every panel.
    this.marked = null;
    // Per unit, the last row painted and its position: shown dimmed while the next row is computed.
    this.lastPainted = {};
    // "ours": computed by this server; "paper": the paper's published rows for the example sentence.
    this.source = "ours";
    this.publishedLabel = "";
    this.publishedUnits = new Set();
    // Whether the counterfactual's edited text is shown (showEdited), whose rows static/counterfactual.js asks for.
    this.edited = false;

    const root = d3.select(element);
    this.status = root.append("p").attr("class", "status").attr("role", "status").attr("aria-live", "polite");
    // The pager moves the window over the text, never the selected position.
    const pager = root.append("div").attr("class", "window-pager controls");
    this.earlier = pager.append("button").attr("type", "button").attr("class", "link").text("◀ earlier line")
      .on("click", () => this.moveWindow(-1));
    this.later = pager.append("button").attr("type", "button").attr("class", "link").text("later line ▶")
      .on("click", () => this.moveWindow(1));
    this.grid = root.append("div");
    this.placePanels(units);
    NARROW.addEventListener("change", () => this.paint());
  }

  /** A panel per unit, in their order: new units' panels are built, those of units no longer shown removed. */
  placePanels(units) {
    this.units = units;
    this.panels = unitPanels(this.grid, units, (panel) => this.buildPanel(panel));
    this.names = this.panels.select(".unit-name");
    this.publishedLabels = this.panels.select(".published-label");
    this.overviews = this.panels.select(".overview");
    // The panels share one position, so only the first is a tab stop; its value speaks for all of them.
    this.lines = this.panels.select(".char-line").attr("tabindex", (unit, index) => (index === 0 ? 0 : -1))
      .attr("aria-label", (unit, index) => (index === 0 ? "Selected position, in every panel; arrow keys move it" : `${unit.name}: selected position`));
    this.captions = this.panels.select(".row-caption");
    this.checks = this.panels.select(".row-check");
    this.suggestionLists = this.panels.select(".suggestions");
  }

  buildPanel(panel) {
    // Panel titles, not headings: the figures sit between the article's h2 sections.
    const heading = panel.append("p").attr("class", "panel-title");
    heading.append("span").attr("class", "unit-swatch").attr("aria-hidden", "true");
    heading.append("span").attr("class", "unit-name");
    panel.append("p").attr("class", "published-label").property("hidden", true);
    // Narrow screens only: the whole text, small; the window's lines are underlined. A tap moves the window there.
    // Hidden from screen readers, whose slider already speaks the whole row.
    if (this.overview) {
      panel.append("div").attr("class", "overview").attr("aria-hidden", "true").on("click", (event) => this.showInWindow(event));
    }
    panel.append("div").attr("class", "char-line")
      .attr("role", "slider").attr("aria-valuemin", 0).attr("aria-valuemax", 0).attr("aria-valuenow", 0)
      // Moves, not "over": a page scrolling under a still pointer (after a walkthrough link) must not
      // take the selection away from the position the link chose.
      .on("pointermove", (event) => this.selectFromEvent(event))
      .on("click", (event) => this.selectFromEvent(event))
      .on("keydown", (event) => this.handleKey(event));
    panel.append("p").attr("class", "row-caption");
    // Integrated gradients only: what the row sums to against the score change it should sum to.
    panel.append("p").attr("class", "row-check").property("hidden", true);
    panel.append("ul").attr("class", "suggestions").attr("aria-label", (unit) => `${unit.name}'s top guesses`);
  }

  /**
   * Shows `units` instead: a unit added gets its panel at once, and the view's data for it alone is fetched (the
   * other panels keep theirs); a unit removed loses its panel, its data kept in case it comes back.
   */
  async setUnits(units) {
    this.placePanels(units);
    this.fillCharacters();
    this.paint();
    await this.fetchMissing();
  }

  /**
   * Asks the server, for the units shown that have nothing for this text yet, what the view needs: their suggestions,
   * their matrix (or, per row, their row at the position) and their row for the chosen word. The paper's rows and the
   * counterfactual's edit are filled by their own callers (static/figures/connectivity.js, static/counterfactual.js).
   */
  async fetchMissing() {
    const missing = this.units.filter((unit) => !this.suggestions[unit.id]).map((unit) => unit.id);
    if (missing.length === 0 || !this.text || this.settled !== this.loading || this.source !== "ours" || this.edited) return;
    const request = this.loading;
    const { text, method, position, word } = this;
    // Marked as asked for, so that another change while these are on their way does not ask again.
    missing.forEach((id) => {
      this.suggestions[id] = [];
      this.matrices[id] = [];
    });
    try {
      const [suggestions, matrices, wordRows] = await Promise.all([
        api.autocomplete({ text, models: missing, positions: "all" }),
        this.perRow ? [] : Promise.all(missing.map((model) => api.connectivity({ text, model, positions: "all", method }))),
        word === null ? [] : Promise.all(missing.map((model) => api.connectivity({ text, model, positions: [position], word, method }))),
      ]);
      if (request !== this.loading) return;
      missing.forEach((id, index) => {
        this.suggestions[id] = suggestions.models[id];
        matrices[index]?.rows.forEach((row) => {
          this.matrices[id][row.position] = row;
        });
        if (wordRows[index] && this.word === word && this.position === position) this.wordRows[id] = wordRows[index].rows[0];
      });
      if (this.perRow) await this.fetchRows(this.position);
    } catch (error) {
      if (request === this.loading) this.setStatus(`Could not compute the units added: ${error.message}`, true);
    }
    if (request === this.loading) this.paint();
  }

  state() {
    return {
      text: this.text, position: this.position, word: this.word, method: this.method, scale: this.scale, shading: this.shading, source: this.source,
    };
  }

  /** Whether the server serves the whole matrix of a normalised text this long (GET /api/limits). */
  servesWhole(length, method) {
    const longest = method === "integrated_gradients" ? this.limits.integrated_gradients_full_matrix_chars : this.limits.full_matrix_chars;
    return length <= longest;
  }

  /**
   * Loads suggestions and the full matrix of every unit for `text` (normalised by the server).
   * Where the full matrix is more work than the server allows (long text, integrated gradients),
   * rows are fetched one position at a time as the selection moves.
   */
  async load(text, { method = this.method, position = null, word = null } = {}) {
    const request = ++this.loading;
    // The units of this request: a unit added meanwhile is fetched at the end, by fetchMissing.
    const { units } = this;
    this.method = method;
    this.source = "ours";
    this.edited = false;
    this.setStatus("Computing suggestions and connectivity…");
    const wholeMatrices = () => Promise.all(units.map((unit) => api.connectivity({ text, model: unit.id, positions: "all", method })));
    // Without digits, normalising adds at most the leading space, so the matrices can be asked for
    // alongside the suggestions; otherwise the normalised length decides, once it is known.
    let matrixRequests = !/\d/.test(text) && this.servesWhole(text.length + 1, method) ? wholeMatrices() : null;
    matrixRequests?.catch(() => {}); // Handled below, after the suggestions; this only silences the early rejection.
    const suggestions = await api.autocomplete({ text, models: units.map((unit) => unit.id), positions: "all" });
    if (request !== this.loading) return this.text;
    this.text = suggestions.text;
    this.lastPainted = {};
    this.suggestions = Object.fromEntries(units.map((unit) => [unit.id, suggestions.models[unit.id]]));
    this.matrices = Object.fromEntries(units.map((unit) => [unit.id, []]));
    this.perRow = false;
    this.wordRows = {};
    this.word = null;
    this.position = clamp(position ?? this.text.length - 1, 0, this.text.length - 1);
    this.buildCharacters();
    this.paint();
    if (!matrixRequests && this.servesWhole(this.text.length, method)) matrixRequests = wholeMatrices();
    if (matrixRequests) {
      const matrices = await matrixRequests;
      if (request !== this.loading) return this.text;
      matrices.forEach((matrix, index) => {
        matrix.rows.forEach((row) => {
          this.matrices[units[index].id][row.position] = row;
        });
      });
      this.setStatus("");
    } else {
      this.perRow = true;
      this.setStatus("This text and method are computed one position at a time, as you move the selection.");
      await this.fetchRows(this.position);
    }
    if (word) await this.chooseWord(word);
    if (request !== this.loading) return this.text;
    this.settled = request;
    this.paint();
    await this.fetchMissing();
    return this.text;
  }

  /**
   * Shows published rows instead of our models' (no server request): `published` maps unit id to
   * one entry per position of `text`, {target, predict, probability, connectivity for 0..t}; a unit
   * the paper did not train is absent, and its panel says so. `label` names the published models.
   */
  showPublished(text, published, { position = null, label }) {
    this.settled = ++this.loading; // a load still in flight must not paint over these rows
    clearTimeout(this.rowTimer);
    this.source = "paper";
    this.edited = false;
    this.publishedLabel = label;
    this.publishedUnits = new Set(Object.keys(published));
    this.method = "gradient";
    this.text = text;
    this.lastPainted = {};
    this.perRow = false;
    this.wordRows = {};
    this.word = null;
    this.suggestions = Object.fromEntries(this.units.map((unit) => [unit.id, (published[unit.id] ?? []).map((entry, index) => ({
      position: index,
      char: entry.char,
      suggestions: entry.predict.map((word, rank) => ({ word, probability: entry.probability[rank] })),
    }))]));
    this.matrices = Object.fromEntries(this.units.map((unit) => [unit.id, (published[unit.id] ?? []).map((entry, index) => ({
      position: index,
      word: entry.target,
      connectivity: [...entry.connectivity, ...new Array(text.length - entry.connectivity.length).fill(0)],
    }))]));
    this.position = clamp(position ?? text.length - 1, 0, text.length - 1);
    this.setStatus("");
    this.buildCharacters();
    this.paint();
  }

  /** Per-row mode: every unit's row at `position`, for the units that lack it. */
  async fetchRows(position) {
    const lacking = this.units.filter((unit) => !this.matrices[unit.id]?.[position]);
    if (lacking.length === 0) return;
    const text = this.text;
    const responses = await Promise.all(lacking.map((unit) =>
      api.connectivity({ text, model: unit.id, positions: [position], method: this.method })));
    if (text !== this.text) return;
    responses.forEach((response, index) => {
      (this.matrices[lacking[index].id] ??= [])[position] = response.rows[0];
    });
    if (this.position === position) this.paint();
  }

  /** Per-row mode: the rows one step either side, so the next arrow key finds its row ready. */
  async prefetchAround(position) {
    for (const neighbour of [position + 1, position - 1]) {
      if (neighbour < 0 || neighbour >= this.text.length || Math.abs(this.position - position) > 1) continue;
      await this.fetchRows(neighbour);
    }
  }

  select(position) {
    const target = clamp(position, 0, this.text.length - 1);
    if (target === this.position && this.word === null) return;
    this.position = target;
    this.reveal(target);
    this.word = null;
    this.wordRows = {};
    this.paint();
    this.onChange(this.state());
    if (this.perRow) {
      // Hovering sweeps across many positions; only ask for the one the pointer settles on.
      clearTimeout(this.rowTimer);
      this.rowTimer = setTimeout(() => {
        this.fetchRows(target)
          .then(() => this.prefetchAround(target))
          .catch((error) => this.setStatus(`Connectivity unavailable: ${error.message}`, true));
      }, ROW_REQUEST_DELAY_MS);
    }
  }

  /** Shows every unit's connectivity for `word` at the selected position (the API's `word` field). */
  async chooseWord(word) {
    const position = this.position;
    this.word = word;
    this.wordRows = {};
    this.paint();
    this.onChange(this.state());
    const { units } = this;
    try {
      const responses = await Promise.all(units.map((unit) =>
        api.connectivity({ text: this.text, model: unit.id, positions: [position], word, method: this.method })));
      if (this.position !== position || this.word !== word) return;
      responses.forEach((response, index) => {
        this.wordRows[units[index].id] = response.rows[0];
      });
      this.setStatus("");
    } catch (error) {
      this.setStatus(`No connectivity for “${word}”: ${error.message}`, true);
    }
    this.paint();
  }

  setShading(shading) {
    this.shading = shading;
    this.paint();
    this.onChange(this.state());
  }

  setScale(scale) {
    this.scale = scale;
    this.paint();
    this.onChange(this.state());
  }

  setStatus(message, isError = false) {
    this.status.text(message).classed("error", isError);
  }

  /** The raw and normalised row each panel shows now, keyed by unit id. */
  currentRows() {
    const raw = Object.fromEntries(this.units.map((unit) => [unit.id, this.rowOf(unit.id)?.connectivity ?? null]));
    const normalised = normaliseRows(raw, this.scale);
    return Object.fromEntries(this.units.map((unit) => [unit.id, {
      word: this.rowOf(unit.id)?.word ?? null,
      connectivity: raw[unit.id],
      normalised: normalised[unit.id],
    }]));
  }

  rowOf(unitId) {
    if (this.word !== null) return this.wordRows[unitId] ?? null;
    return this.matrices[unitId]?.[this.position] ?? null;
  }

  /**
   * Shows one position of another text, the counterfactual's edited text (static/counterfactual.js): `rows` and
   * `suggestions` map unit id to that position's connectivity row and guesses. Returns what restoreView needs to bring
   * back the view it replaces.
   */
  showEdited(text, position, rows, suggestions) {
    this.settled = ++this.loading; // a load still in flight must not paint over the edited text
    this.edited = true;
    clearTimeout(this.rowTimer);
    const saved = {
      text: this.text, position: this.position, word: this.word, wordRows: this.wordRows, matrices: this.matrices,
      suggestions: this.suggestions, perRow: this.perRow,
    };
    this.text = text;
    this.position = position;
    this.word = null;
    this.wordRows = {};
    this.perRow = false;
    this.lastPainted = {};
    this.matrices = Object.fromEntries(this.units.map((unit) => [unit.id, { [position]: rows[unit.id] }]));
    this.suggestions = Object.fromEntries(this.units.map((unit) => [unit.id, { [position]: { suggestions: suggestions[unit.id] ?? [] } }]));
    this.buildCharacters();
    this.paint();
    return saved;
  }

  /** Brings back a view that showEdited replaced, and fetches it for the units added meanwhile. */
  async restoreView(saved) {
    this.settled = ++this.loading;
    this.edited = false;
    Object.assign(this, saved);
    this.lastPainted = {};
    this.buildCharacters();
    this.paint();
    await this.fetchMissing();
  }

  /** The unit's name, or in the paper's view the paper's name for it (or that the paper has none). */
  panelName(unit) {
    if (this.source !== "paper") return unit.name;
    return this.publishedUnits.has(unit.id) ? `${unit.paperName}, the paper's model` : `${unit.name}, not in the paper`;
  }

  selectFromEvent(event) {
    const char = event.target.closest?.(".char");
    if (!char) return;
    this.onInteract();
    this.marked = null;
    this.select(Number(char.dataset.position));
  }

  /** Whether the rows shown are signed (integrated gradients), drawn on a diverging scale. */
  get signed() {
    return this.method === "integrated_gradients" && this.source === "ours";
  }

  /**
   * Outlines the word around `position` in every panel and brings it into the window, without moving the
   * selection: a link in the prose ("the first “grammar”") points at it while the row stays the one discussed.
   */
  markWord(position) {
    const start = this.text.lastIndexOf(" ", position) + 1;
    const next = this.text.indexOf(" ", position);
    this.marked = { start, end: next === -1 ? this.text.length : next };
    this.reveal(start);
    this.paint();
  }

  handleKey(event) {
    let target = null;
    if (event.key in KEY_STEPS) target = this.position + KEY_STEPS[event.key];
    else if (event.key === "Home") target = 0;
    else if (event.key === "End") target = this.text.length - 1;
    if (target === null) return;
    event.preventDefault();
    this.onInteract();
    this.marked = null;
    this.select(target);
  }

  buildCharacters() {
    this.marked = null;
    this.fillCharacters();
    this.windowLine = 0;
    this.reveal(this.position);
  }

  /** Every panel's characters of the text (a new panel's too), and its slider's range. */
  fillCharacters() {
    const characters = Array.from(this.text, (char, position) => ({ char, position }));
    this.lines.attr("aria-valuemax", Math.max(0, this.text.length - 1))
      .selectAll("span.char").data(characters).join("span")
      .attr("class", "char")
      .attr("data-position", (item) => item.position)
      .text((item) => item.char);
    this.overviews.selectAll("span.overview-char").data(characters).join("span")
      .attr("class", "overview-char")
      .attr("data-position", (item) => item.position)
      .text((item) => item.char);
  }

  /** The text wrapped between words into lines of as many TARGET_PX-wide characters as a panel holds, and each position's line. */
  wrappedLines() {
    const perLine = Math.max(8, Math.floor(((this.lines.node()?.clientWidth || 320) - 4) / TARGET_PX));
    if (this.wrapped?.perLine !== perLine || this.wrapped.text !== this.text) {
      const lines = wrapPositions(this.text, perLine);
      const lineOf = [];
      lines.forEach((positions, line) => positions.forEach((position) => {
        lineOf[position] = line;
      }));
      this.wrapped = { perLine, text: this.text, lines, lineOf };
    }
    return this.wrapped;
  }

  /** Narrow screens: moves the window, if need be, so that `position` is on its last line (the text before it is the context). */
  reveal(position) {
    if (!NARROW.matches || !this.text) return;
    const line = this.wrappedLines().lineOf[position] ?? 0;
    if (line < this.windowLine || line >= this.windowLine + WINDOW_LINES) this.windowLine = Math.max(0, line - WINDOW_LINES + 1);
  }

  /** The pager: the window `lines` lines later (or earlier); the selected position stays. */
  moveWindow(lines) {
    this.windowLine += lines;
    this.paint();
  }

  /** A tap on the small whole text: the window starts at the line tapped; the selected position stays. */
  showInWindow(event) {
    const char = event.target.closest?.(".overview-char");
    if (!char) return;
    this.windowLine = this.wrappedLines().lineOf[Number(char.dataset.position)];
    this.paint();
  }

  /** Narrow screens: shows WINDOW_LINES whole lines from `windowLine`, each ending between words. Returns the window's positions [first, last]. */
  placeWindow() {
    const { lines } = this.wrappedLines();
    this.windowLine = clamp(this.windowLine, 0, Math.max(0, lines.length - WINDOW_LINES));
    const shown = lines.slice(this.windowLine, this.windowLine + WINDOW_LINES);
    const [first, last] = [shown[0][0], shown.at(-1).at(-1)];
    const lineStarts = new Set(shown.slice(1).map((positions) => positions[0]));
    this.lines.classed("windowed", true).each(function breakLines() {
      d3.select(this).selectAll("br.window-break").remove();
      d3.select(this).selectAll("span.char")
        .classed("outside", (item) => item.position < first || item.position > last)
        .filter((item) => lineStarts.has(item.position))
        .each(function breakBefore() {
          this.before(Object.assign(document.createElement("br"), { className: "window-break" }));
        });
    });
    this.earlier.property("disabled", this.windowLine === 0);
    this.later.property("disabled", this.windowLine + WINDOW_LINES >= lines.length);
    return [first, last];
  }

  paint() {
    const windowed = NARROW.matches && this.text !== "";
    const [windowFirst, windowLast] = windowed ? this.placeWindow() : [0, this.text.length - 1];
    if (!windowed) this.lines.classed("windowed", false).selectAll("br.window-break").remove();
    const published = this.source === "paper";
    const showsPublished = (unit) => published && this.publishedUnits.has(unit.id);
    this.panels.classed("published", showsPublished);
    this.names.text((unit) => this.panelName(unit));
    this.publishedLabels.property("hidden", (unit) => !showsPublished(unit)).text(this.publishedLabel);
    const current = this.currentRows();
    const position = this.position;
    const chars = this.text;
    const { lastPainted, shading, signed, marked } = this;
    const isMarked = (item) => marked !== null && item.position >= marked.start && item.position < marked.end;
    this.lines
      .attr("aria-valuenow", position)
      // Screen readers hear what the shading shows: the strongest earlier characters and how far back.
      .attr("aria-valuetext", (unit, index) => `position ${position}, ${describeCharacter(chars, position)}; `
        + (index === 0 ? this.units.map((each) => `${each.name} ${strongest(current[each.id].normalised, chars, position)}`).join("; ")
          : strongest(current[unit.id].normalised, chars, position)))
      .each(function paintLine(unit) {
        const fresh = current[unit.id].normalised;
        if (fresh !== null) lastPainted[unit.id] = { values: fresh, position };
        // Until this position's row arrives, the last one stays on screen, dimmed, instead of a blank panel.
        const { values, position: paintedUpTo } = fresh !== null ? { values: fresh, position } : lastPainted[unit.id] ?? { values: null };
        const colourOf = (item) => (values !== null && item.position <= paintedUpTo ? connectivityColour(values[item.position], shading, signed) : null);
        d3.select(this).classed("stale", fresh === null && values !== null)
          .selectAll("span.char")
          .classed("selected", (item) => item.position === position)
          .classed("future", (item) => item.position > position)
          .classed("marked", isMarked)
          .each(function paintCharacter(item) {
            const background = colourOf(item);
            this.style.backgroundColor = background ?? "";
            this.style.color = background ? textColourOn(background) : "";
            this.dataset.connectivity = fresh !== null && background ? values[item.position].toFixed(4) : "";
          });
        if (!windowed) return;
        d3.select(this.parentNode).select(".overview").classed("stale", fresh === null && values !== null)
          .selectAll("span.overview-char")
          .classed("current", (item) => item.position === position)
          .classed("future", (item) => item.position > position)
          .classed("in-window", (item) => item.position >= windowFirst && item.position <= windowLast)
          .classed("marked", isMarked)
          .each(function paintCharacter(item) {
            const background = colourOf(item);
            this.style.backgroundColor = background ?? "";
            this.style.color = background ? textColourOn(background) : "";
          });
      });
    this.captions.each(function caption(unit) {
      const row = current[unit.id];
      const element = d3.select(this).text("");
      if (published && !row.word) {
        element.text("The paper published no such model.");
        return;
      }
      if (!row.word) {
        element.text("computing…");
        return;
      }
      element.append("span").text("Connectivity of ");
      element.append("q").attr("class", "row-word").text(row.word);
      if (published) element.append("span").text(" (the word in the text)");
      // The position is the same in every panel: a phone, short of room, shows it once, framed in the text.
      element.append("span").attr("class", "caption-position").text(` at position ${position} (${describeCharacter(chars, position)})`);
    });
    const rowObjects = Object.fromEntries(this.units.map((unit) => [unit.id, this.rowOf(unit.id)]));
    this.checks.each(function check(unit) {
      const row = rowObjects[unit.id];
      const shown = signed && row?.score_change != null;
      const incomplete = shown && completenessShare(row) > COMPLETENESS_WARNING;
      d3.select(this.parentNode).classed("incomplete", incomplete);
      d3.select(this).property("hidden", !shown).classed("warning", incomplete).text(shown ? completenessText(row) : "");
    });
    const chosenWord = this.word;
    this.suggestionLists.each((unit, index, nodes) => {
      const suggestions = this.suggestions[unit.id]?.[position]?.suggestions ?? [];
      renderSuggestions(nodes[index], suggestions, {
        pressed: (word) => word === (chosenWord ?? current[unit.id].word),
        // The paper published one row per position, for the word in the text; no other word can be shown.
        onChoose: published ? null : (word) => {
          this.onInteract();
          this.chooseWord(word);
        },
      });
    });
  }

  /**
   * A standalone SVG of the panels as they look now, for download: `caption` (method, scale,
   * shading) on top, the colour legend with its real values, and the text wrapped between words.
   */
  toSVG(caption) {
    const charWidth = 8.5;
    const lineHeight = 20;
    const perLine = 72;
    const margin = 16;
    const legendWidth = 180;
    const header = 64;
    const rows = this.currentRows();
    const signed = this.signed;
    const lines = wrapPositions(this.text, perLine);
    const panelHeight = 28 + lines.length * lineHeight + 12;
    const width = margin * 2 + perLine * charWidth;
    const shading = shadingById(this.shading);
    const svg = d3.create("svg").attr("xmlns", "http://www.w3.org/2000/svg")
      .attr("width", width).attr("height", margin * 2 + header + panelHeight * this.units.length)
      .attr("font-family", "DejaVu Sans Mono, Menlo, Consolas, monospace").attr("font-size", 14);
    svg.append("rect").attr("width", "100%").attr("height", "100%").attr("fill", "#fff");
    const top = svg.append("g").attr("transform", `translate(${margin},${margin})`).attr("font-family", "sans-serif").attr("font-size", 12);
    top.append("text").attr("y", 12).attr("font-weight", 600)
      .text(`Connectivity at position ${this.position} (${describeCharacter(this.text, this.position)})`);
    top.append("text").attr("y", 28).text(caption);
    const gradient = svg.append("defs").append("linearGradient").attr("id", "legend");
    legendStops(signed).forEach(([offset, colour]) => gradient.append("stop").attr("offset", `${offset * 100}%`).attr("stop-color", colour));
    const legend = top.append("g").attr("transform", "translate(0,36)");
    legend.append("rect").attr("width", legendWidth).attr("height", 8).attr("fill", "url(#legend)");
    legend.selectAll("text").data(legendTicks(shading.id, signed)).join("text").attr("x", (tick) => legendPosition(tick, shading.id, signed) * legendWidth)
      .attr("y", 20).attr("text-anchor", "middle").attr("font-size", 10).text((tick) => d3.format("~g")(tick).replace("-", "−"));
    legend.append("text").attr("x", legendWidth + 12).attr("y", 8).attr("font-size", 10)
      .text(signed ? "fraction of the largest magnitude: red lowers the word's score, blue raises it" : "fraction of the maximum");
    this.units.forEach((unit, unitIndex) => {
      const panel = svg.append("g").attr("transform", `translate(${margin},${margin + header + unitIndex * panelHeight})`);
      const row = rows[unit.id];
      const name = this.source === "paper" && this.publishedUnits.has(unit.id) ? `${this.panelName(unit)} (${this.publishedLabel})` : this.panelName(unit);
      panel.append("text").attr("y", 14).attr("font-family", "sans-serif").attr("font-weight", 600)
        .text(`${name}: “${row.word ?? ""}”`);
      // Neighbouring cells overlap by a fraction of a pixel, so no hairline of white shows between them.
      const cells = panel.append("g").attr("shape-rendering", "crispEdges");
      lines.forEach((positions, lineIndex) => positions.forEach((position, column) => {
        const char = this.text[position];
        const x = column * charWidth;
        const y = 28 + lineIndex * lineHeight;
        const coloured = row.normalised !== null && position <= this.position;
        const background = coloured ? connectivityColour(row.normalised[position], this.shading, signed) : null;
        if (background) cells.append("rect").attr("x", x).attr("y", y).attr("width", charWidth + 0.5).attr("height", lineHeight - 2).attr("fill", background);
        if (position === this.position) {
          panel.append("rect").attr("x", x).attr("y", y).attr("width", charWidth).attr("height", lineHeight - 2)
            .attr("fill", "none").attr("stroke", "#000").attr("stroke-width", 2);
        }
        panel.append("text").attr("x", x + charWidth / 2).attr("y", y + lineHeight - 7).attr("text-anchor", "middle")
          .attr("fill", background ? textColourOn(background) : "#595959").text(char);
      }));
    });
    return new XMLSerializer().serializeToString(svg.node());
  }
}

/**
 * One section per unit in `grid`, a grid of as many columns as units (one column on a phone), each carrying its unit's
 * colour for the swatches and bars inside it; `build(panel)` fills a new unit's section. Called again with other
 * units, it keeps the sections of units still there, builds those of new ones and removes the rest, in the units'
 * order. Shared by Figures 1, 3 and 4.
 */
export function unitPanels(grid, units, build) {
  grid.attr("class", "unit-panels").node().style.setProperty("--unit-count", units.length);
  return grid.selectAll(":scope > section").data(units, (unit) => unit.id)
    .join((enter) => enter.append("section")
      .attr("class", "text-panel").attr("data-unit", (unit) => unit.id)
      .each(function fill(unit) {
        paintUnitColour(this, unit);
        build(d3.select(this));
      }));
}

/** A list of guess buttons with probability bars in the colour of the panel; onChoose null: not choosable. */
export function renderSuggestions(list, suggestions, { pressed = () => false, onChoose }) {
  // One tab stop per list (the chosen guess, or the first); the arrow keys move between its guesses.
  const tabStop = Math.max(0, suggestions.findIndex((suggestion) => pressed(suggestion.word)));
  d3.select(list).attr("role", "toolbar").attr("aria-orientation", "vertical").on("keydown", moveAmongButtons);
  // Joined by rank, not by word: a new guess takes the place of the old one instead of moving the list.
  d3.select(list).selectAll("li").data(suggestions)
    .join((enter) => {
      // Items of a toolbar, not of a list: the list role gives way to the toolbar's.
      const item = enter.append("li").attr("role", "none");
      const button = item.append("button").attr("type", "button").attr("class", "suggestion");
      button.append("span").attr("class", "word");
      button.append("span").attr("class", "bar-track").append("span").attr("class", "bar");
      button.append("span").attr("class", "probability");
      button.append("span").attr("class", "visually-hidden action");
      return item;
    })
    .each(function fill(suggestion, rank) {
      // Bound on every render, not when the button is created: a kept button must choose its word
      // for the text shown now, not for the text of its first render.
      const button = d3.select(this).select("button")
        .on("click", onChoose ? () => onChoose(suggestion.word) : null)
        .property("disabled", !onChoose)
        .attr("tabindex", rank === tabStop ? 0 : -1)
        .attr("aria-pressed", String(pressed(suggestion.word)));
      // The accessible name is the visible text, then what the button does (no aria-label that would hide the word).
      button.select(".action").text(onChoose ? "; show its connectivity" : "");
      button.select(".word").text(suggestion.word);
      button.select(".bar").node().style.width = `${(suggestion.probability * 100).toFixed(1)}%`;
      button.select(".probability").text(formatProbability(suggestion.probability));
    });
}

function moveAmongButtons(event) {
  const steps = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 };
  if (!(event.key in steps)) return;
  const buttons = [...event.currentTarget.querySelectorAll("button")];
  const next = buttons[buttons.indexOf(document.activeElement) + steps[event.key]];
  if (!next) return;
  event.preventDefault();
  buttons.forEach((button) => button.setAttribute("tabindex", button === next ? "0" : "-1"));
  next.focus();
}

export function formatProbability(probability) {
  return `${(probability * 100).toFixed(probability < 0.1 ? 1 : 0)} %`;
}

const SPOKEN_STRONGEST = 3;

/**
 * What an integrated-gradients row adds up to: "The row sums to 12.46; the score change from the baseline
 * (every letter a space) is 12.50, off by 0.3 % (74 steps)", with a warning past COMPLETENESS_WARNING that says why:
 * mostly a jump of the score that the path cannot be cut fine enough to see (`unresolved_jump`), or the work limit.
 */
export function completenessText(row) {
  const sum = row.connectivity.reduce((total, value) => total + value, 0);
  const steps = `${row.integration_steps}${NBSP}steps`;
  if (row.score_change === 0) return `The row sums to ${formatScore(sum)}: here the text is the baseline (every letter a space), so the score does not change.`;
  const share = completenessShare(row);
  const check = `The row sums to ${formatScore(sum)}; the score change from the baseline (every letter a space) is ${formatScore(row.score_change)}`;
  if (share <= COMPLETENESS_WARNING) return `${check}, off by ${formatPercent(share)} (${steps}).`;
  if ((row.unresolved_jump ?? 0) >= row.completeness_error / 2) {
    return `⚠ ${check}, off by ${formatPercent(share)} after ${steps}: ${formatScore(row.unresolved_jump)} of the score change happens `
      + "between inputs that float32 cannot tell apart (this unit is that sensitive to its input here), a jump no gradient sees, "
      + "so no number of steps resolves it and these colours leave it out.";
  }
  return `⚠ ${check}, off by ${formatPercent(share)} even after ${steps}: the integration did not converge within the server's work limit, `
    + "so these colours are not reliable.";
}

/** How far an integrated-gradients row's sum misses its score change, as a share of that change. */
export function completenessShare(row) {
  return row.score_change === 0 ? 0 : row.completeness_error / Math.abs(row.score_change);
}

/** A score (a logit, in nats): two decimals and a true minus sign. */
export function formatScore(value) {
  return `${value < 0 ? "−" : ""}${Math.abs(value).toFixed(2)}`;
}

/** "most connected: 0 back (“g” of “grammar”, 100 %), 2 back (…)", for the slider's aria-valuetext; signed rows by magnitude. */
function strongest(normalised, text, position) {
  if (normalised === null) return "connectivity still loading";
  const ranked = d3.range(position + 1).sort((a, b) => Math.abs(normalised[b]) - Math.abs(normalised[a]) || b - a).slice(0, SPOKEN_STRONGEST);
  return `most connected: ${ranked.map((index) => `${position - index} back (${describeCharacter(text, index)}, ${formatProbability(normalised[index])})`).join(", ")}`;
}

/** "'e' of 'learning'" or "the space before 'learning'", for captions and screen readers. */
export function describeCharacter(text, position) {
  const word = wordAt(text, position);
  if (text[position] === " ") return word ? `the space before “${word}”` : "the final space";
  return `“${text[position]}” of “${word}”`;
}

/** The word a position belongs to; a space belongs to the word after it, as in the training targets. */
export function wordAt(text, position) {
  const start = text[position] === " " ? position + 1 : text.lastIndexOf(" ", position) + 1;
  const end = text.indexOf(" ", start);
  return text.slice(start, end === -1 ? text.length : end);
}

/** The text's positions in lines of at most `width` characters, broken after spaces where a word fits. */
function wrapPositions(text, width) {
  const lines = [[]];
  Array.from(text).forEach((char, position) => {
    const line = lines.at(-1);
    const nextSpace = text.indexOf(" ", position);
    const wordLength = (nextSpace === -1 ? text.length : nextSpace) - position;
    const startsWord = char !== " " && (position === 0 || text[position - 1] === " ");
    const wordFits = wordLength <= width - line.length;
    if (line.length === width || (startsWord && !wordFits && line.length > 0)) lines.push([]);
    lines.at(-1).push(position);
  });
  return lines;
}

function clamp(value, low, high) {
  return Math.max(low, Math.min(high, value));
}
