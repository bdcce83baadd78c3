// The one client for the server's API. Identical requests share one promise, so the hero and
// Figure 4 can both ask for the example sentence's matrices without computing them twice.

const cache = new Map();
const CACHE_LIMIT = 64;

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

async function request(path, { method = "GET", body, signal } = {}) {
  const response = await fetch(path, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (!response.ok) {
    throw new ApiError(await errorMessage(response), response.status);
  }
  return response.json();
}

// FastAPI puts the reason in `detail`, as a string or as a list of validation errors.
async function errorMessage(response) {
  try {
    const { detail } = await response.json();
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) return detail.map((item) => item.msg ?? String(item)).join("; ");
  } catch {
    // The body was not JSON; the status line is all there is.
  }
  return `${response.status} ${response.statusText}`;
}

function cached(key, load) {
  if (!cache.has(key)) {
    const promise = load();
    cache.set(key, promise);
    promise.catch(() => cache.delete(key));
    if (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value);
  }
  return cache.get(key);
}

export function listModels() {
  return cached("models", () => request("/api/models"));
}

export function loadPaper() {
  return cached("paper", () => request("/static/data/paper.json"));
}

/** The autocomplete demo's starting prefix, chosen from the shipped models' output by tools/demo_prefix.py. */
export function loadDemo() {
  return cached("demo", () => request("/static/data/demo.json"));
}

/** The paper's memory profile on the example sentence, computed by models/memory.py from its published rows. */
export function loadPaperMemory() {
  return cached("paper memory", () => request("/static/data/paper/memory.json"));
}

/** The paper's published top-3 and connectivity at every position of the example sentence, for one unit. */
export function loadPaperConnectivity(unitId) {
  return cached(`paper connectivity ${unitId}`, () => request(`/static/data/paper/${unitId}.json`));
}

/** Suggestions; `positions: "last"` is the per-keystroke request (not cached: it is cheap and always new). */
export function autocomplete({ text, models, topK = 3, positions = "all", signal }) {
  const body = { text, top_k: topK, positions, ...(models ? { models } : {}) };
  if (positions === "last") return request("/api/autocomplete", { method: "POST", body, signal });
  return cached(`autocomplete ${JSON.stringify(body)}`, () => request("/api/autocomplete", { method: "POST", body }));
}

/** Connectivity rows of one model: `positions` is "all" (the full matrix) or a list of indices. */
export function connectivity({ text, model, positions = "all", word, method = "gradient" }) {
  const body = { text, model, positions, method, ...(word ? { word } : {}) };
  return cached(`connectivity ${JSON.stringify(body)}`, () => request("/api/connectivity", { method: "POST", body }));
}
