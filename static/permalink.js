// Figure 4's view lives in the query string (text, position, word, method, scale, shading, source), so a copied link
// reopens it. Other parts of the page ask for a view through requestView; Figure 4 listens. The units Figures 1, 3
// and 4 show (static/unit-choice.js) live there too, as ?units=gru,lstm,rnn.

export const VIEW_EVENT = "connectivity-view";
const KEYS = ["text", "position", "word", "method", "scale", "shading", "source"];
const UNITS_KEY = "units";
const WRITE_DELAY_MS = 250;
let pendingWrite = null;

/** The view in the URL; absent keys are null. */
export function readViewState() {
  const query = new URLSearchParams(window.location.search);
  const position = query.get("position");
  return {
    text: query.get("text"),
    position: position !== null && /^\d+$/.test(position) ? Number(position) : null,
    word: query.get("word"),
    method: query.get("method"),
    scale: query.get("scale"),
    shading: query.get("shading"),
    source: query.get("source"),
  };
}

export function hasViewState() {
  const query = new URLSearchParams(window.location.search);
  return KEYS.some((key) => query.has(key));
}

/** Writes the view, leaving out values equal to `defaults`; debounced because hovering changes it fast. */
export function writeViewState(state, defaults) {
  clearTimeout(pendingWrite);
  pendingWrite = setTimeout(() => {
    const query = new URLSearchParams(window.location.search);
    KEYS.forEach((key) => {
      const value = state[key];
      if (value === null || value === undefined || value === defaults[key]) query.delete(key);
      else query.set(key, String(value));
    });
    replaceQuery(query);
  }, WRITE_DELAY_MS);
}

/** The unit ids in the URL, in its order, or [] where it names none. */
export function readUnitChoice() {
  return (new URLSearchParams(window.location.search).get(UNITS_KEY) ?? "").split(",").filter(Boolean);
}

/** Writes the units chosen; null (the default choice) leaves the parameter out. */
export function writeUnitChoice(ids) {
  const query = new URLSearchParams(window.location.search);
  if (ids === null) query.delete(UNITS_KEY);
  else query.set(UNITS_KEY, ids.join(","));
  replaceQuery(query);
}

function replaceQuery(query) {
  const search = searchOf(query);
  window.history.replaceState(null, "", `${window.location.pathname}${search ? `?${search}` : ""}${window.location.hash}`);
}

// Commas are left as they are: a query string may hold them, and ?units=gru,lstm reads better than gru%2Clstm.
function searchOf(query) {
  return query.toString().replaceAll("%2C", ",");
}

// A word the prose points at (a position in it), outlined in Figure 4 without moving the selection: kept
// until Figure 4 takes it, so a figure that renders after the click still shows it.
let requestedMark = null;

/** The word position a link asked Figure 4 to outline, or null; asking again returns null until the next link. */
export function takeRequestedMark() {
  const mark = requestedMark;
  requestedMark = null;
  return mark;
}

/**
 * Asks Figure 4 to show a view; if it has not rendered yet, it reads the same view from the URL.
 * A key set to null goes back to its default; a key left out keeps its current value. `mark`: a position
 * whose word Figure 4 outlines (not part of the URL: the view is the same without it).
 */
export function requestView(state, { mark = null } = {}) {
  requestedMark = mark;
  clearTimeout(pendingWrite);
  const query = new URLSearchParams(window.location.search);
  Object.entries(state).forEach(([key, value]) => {
    if (value === null) query.delete(key);
    else query.set(key, String(value));
  });
  window.history.replaceState(null, "", `${window.location.pathname}?${searchOf(query)}`);
  window.dispatchEvent(new CustomEvent(VIEW_EVENT, { detail: readViewState() }));
}
