// The one client for the server's API. Identical requests share one promise, so the hero and
// Figure 4 can both ask for the example sentence's matrices without computing them twice.
// Questions whose answers are fixed (everything but a keystroke) are asked as GET with the
// server's answer version in the URL, so the browser and any proxy in front can keep them.

const cache = new Map();
const CACHE_LIMIT = 64;
// Longer URLs than this go as POST: some proxies refuse long ones (a text can be max_text_chars long, 1,000 by default).
const MAX_GET_URL = 2000;
// The X-Answers-Version header of /api/models: it names the models and the format of every answer.
let answersVersion = null;

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

async function request(path, options) {
  return (await send(path, options)).json();
}

async function send(path, { method = "GET", body, signal } = {}) {
  const response = await fetch(path, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (!response.ok) {
    throw new ApiError(await errorMessage(response), response.status);
  }
  return response;
}

/** A fixed question as GET, with the answer version once known; as POST when the URL would be too long. */
async function ask(path, body, signal) {
  await listModels().catch(() => {}); // Without the version the question is still answered, only not kept as long.
  const query = new URLSearchParams();
  Object.entries(body).forEach(([name, value]) => query.set(name, Array.isArray(value) ? value.join(",") : String(value)));
  if (answersVersion) query.set("v", answersVersion);
  const url = `${path}?${query}`;
  if (url.length <= MAX_GET_URL) return request(url, { signal });
  return request(path, { method: "POST", body, signal });
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

// Least recently used forgotten first: the answers a figure shows now stay while a reader's other questions come and go.
// `load` may be left out for a key that is kept.
function cached(key, load) {
  const kept = cache.get(key);
  const promise = kept ?? load();
  if (!kept) promise.catch(() => cache.get(key) === promise && cache.delete(key));
  cache.delete(key);
  cache.set(key, promise);
  if (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value);
  return promise;
}

/**
 * A question asked of several models whose answer holds one entry per model under `models`: each model's part is kept
 * on its own, so that asking again with a unit added asks the server about that unit only. `fetch(ids)` asks about
 * `ids`; the answer's other fields (the normalised text, the edit) are the same whichever models are asked.
 */
function perModel(name, question, models, fetch) {
  const key = (model) => `${name} ${JSON.stringify({ ...question, model })}`;
  // The kept parts are recalled first, so that keeping the missing ones cannot push them out of the cache.
  const kept = new Map(models.filter((model) => cache.has(key(model))).map((model) => [model, cached(key(model))]));
  const missing = models.filter((model) => !kept.has(model));
  const answer = missing.length ? fetch(missing) : null;
  const parts = models.map((model) => kept.get(model) ?? cached(key(model), async () => {
    const whole = await answer;
    return { ...whole, models: { [model]: whole.models[model] } };
  }));
  return Promise.all(parts).then((each) => ({ ...each[0], models: Object.assign({}, ...each.map((part) => part.models)) }));
}

export function listModels() {
  return cached("models", async () => {
    const response = await send("/api/models");
    answersVersion = response.headers.get("X-Answers-Version");
    return response.json();
  });
}

export function loadPaper() {
  return cached("paper", () => request("/static/data/paper.json"));
}

/** The autocomplete demo's starting prefix, chosen from the shipped models' output by app/demo_prefix.py (python -m app.demo_prefix). */
export function loadDemo() {
  return cached("demo", () => request("/static/data/demo.json"));
}

/** The paper's memory profile on the example sentence, computed by models/memory.py from its published rows. */
export function loadPaperMemory() {
  return cached("paper memory", () => request("/static/data/paper/memory.json"));
}

/** The paper's validation loss against mini-batches, per paper model, and the characters a mini-batch stands for. */
export function loadPaperTraining() {
  return cached("paper training", () => request("/static/data/paper/training.json"));
}

/** The paper's published top-3 and connectivity at every position of the example sentence, for one unit. */
export function loadPaperConnectivity(unitId) {
  return cached(`paper connectivity ${unitId}`, () => request(`/static/data/paper/${unitId}.json`));
}

/** Suggestions of `models`; `positions: "last"` is the per-keystroke request (not cached: it is cheap and always new). */
export function autocomplete({ text, models, topK = 3, positions = "all", signal }) {
  const question = { text, top_k: topK, positions };
  if (positions === "last") return request("/api/autocomplete", { method: "POST", body: { ...question, models }, signal });
  return perModel("autocomplete", question, models, (missing) => ask("/api/autocomplete", { ...question, models: missing }));
}

/** Connectivity rows of one model: `positions` is "all" (the full matrix) or a list of indices. */
export function connectivity({ text, model, positions = "all", word, method = "gradient" }) {
  const body = { text, model, positions, method, ...(word ? { word } : {}) };
  return cached(`connectivity ${JSON.stringify(body)}`, async () => padRows(await ask("/api/connectivity", body)));
}

/**
 * Each unit's guesses at `position` before and after one earlier word is replaced (the word at `replaceAt`), with the
 * edited text's connectivity row: `replaceWith` is "other_word" (drawn by the server, `draw` for another), "typed_word"
 * (`typedWord`) or "spaces".
 */
export function counterfactual({ text, position, replaceAt, replaceWith = "other_word", typedWord, draw = 0, models, word, method = "gradient" }) {
  const question = {
    text, position, replace_at: replaceAt, replace_with: replaceWith, draw, method,
    ...(replaceWith === "typed_word" ? { typed_word: typedWord } : {}), ...(word ? { word } : {}),
  };
  return perModel("counterfactual", question, models, async (missing) => {
    const answer = await ask("/api/counterfactual", { ...question, models: missing });
    const width = answer.edited_text.length;
    Object.values(answer.models).forEach((result) => padRow(result.connectivity, width));
    return answer;
  });
}

/**
 * The norms of the gradient of each position's word score with respect to every layer's state at every step
 * (models/unrolled.py). Not kept here: the figure keeps its own, one answer per column, which would crowd the others out.
 */
export function unrolled({ text, model, positions }) {
  return ask("/api/unrolled", { text, model, positions });
}

// The server sends each row only up to its own position (later characters cannot influence it, so
// their values are 0): the figures index rows by character, so rows are padded back to full width here.
function padRows(answer) {
  const width = answer.text.length;
  answer.rows.forEach((row) => padRow(row, width));
  return answer;
}

function padRow(row, width) {
  while (row.connectivity.length < width) row.connectivity.push(0);
}
