// Starts the page: finds each [data-figure] element and calls its module's render(element, data).
// Figures marked data-lazy (the ones that ask the server for connectivity) render when they come
// near the viewport, so nothing heavy is requested before the reader gets there.

import * as api from "./api.js";
import { revealFigure, scrollToFigure } from "./motion.js";
import { hasViewState, requestView } from "./permalink.js";
import { watchScrollers } from "./scrollers.js";
import { UnitChoice } from "./unit-choice.js";
import { servedUnits } from "./units.js";

const FIGURES = {
  hero: () => import("./figures/hero.js"),
  "model-summary": () => import("./figures/model-summary.js"),
  units: () => import("./figures/units.js"),
  autocomplete: () => import("./figures/autocomplete.js"),
  connectivity: () => import("./figures/connectivity.js"),
  memory: () => import("./figures/memory.js"),
  intervention: () => import("./figures/intervention.js"),
  vanishing: () => import("./figures/vanishing.js"),
  accuracy: () => import("./figures/accuracy.js"),
  training: () => import("./figures/training.js"),
  tables: () => import("./figures/tables.js"),
  setup: () => import("./figures/setup.js"),
};
const LAZY_MARGIN = "300px 0px";

// metrics.json arrives with the page as a JSON data block, less what /api/models gives each model (its memory profile,
// accuracy by letters known, history and copy test: unit.model); it is null when the models have no record.
// So do the API's limits (as GET /api/limits serves them), so that figures ask only for what the server will serve.
// `units` are all the served units, which Figures 5 to 7 and the tables show; `choice` holds the ones Figures 1, 3
// and 4 show, which the reader picks.
const metrics = JSON.parse(document.getElementById("metrics").textContent);
const limits = JSON.parse(document.getElementById("limits").textContent);
const data = Promise.all([api.listModels(), api.loadPaper()]).then(([models, paper]) => {
  const units = servedUnits(models, paper);
  return { units, choice: new UnitChoice(units), paper, metrics, limits };
});

async function renderFigure(element) {
  try {
    const [module, figureData] = await Promise.all([FIGURES[element.dataset.figure](), data]);
    await module.render(element, figureData);
    element.dataset.rendered = "true";
    watchScrollers(element);
  } catch (error) {
    console.error(`figure ${element.dataset.figure}:`, error);
    const notice = document.createElement("p");
    notice.className = "notice";
    notice.textContent = `This figure could not be drawn: ${error.message}`;
    (element.querySelector(".figure-body") ?? element).replaceChildren(notice);
  }
}

// One batch of entries can hold the same figure twice (scrolled in, out and in again within a frame).
const started = new WeakSet();
const observer = new IntersectionObserver((entries) => {
  entries.filter((entry) => entry.isIntersecting && !started.has(entry.target)).forEach((entry) => {
    started.add(entry.target);
    observer.unobserve(entry.target);
    renderFigure(entry.target);
  });
}, { rootMargin: LAZY_MARGIN });

document.querySelectorAll("[data-figure]").forEach((element) => {
  if ("lazy" in element.dataset) observer.observe(element);
  else renderFigure(element);
});

watchScrollers(document);

// Walkthrough links select their position in Figure 4 (on the example sentence) and bring it into view; their
// href carries the position, so a copied link opens the same view. A link inside a note's text ("the first
// “grammar”") keeps the note's own position and outlines the word it names.
const connectivityFigure = document.getElementById("fig-connectivity");
const walkthroughLinks = [...document.querySelectorAll("[data-walkthrough]")];

function walkthroughTarget(link, indices) {
  const [group, index] = link.dataset.walkthrough.split("-");
  if (group !== "inline") return { position: indices[group], mark: null };
  return { position: indices[link.closest("[data-walkthrough-step]").dataset.walkthroughStep], mark: indices.inline[Number(index)] };
}

data.then(({ paper }) => walkthroughLinks.forEach((link) => {
  link.href = `?position=${walkthroughTarget(link, paper.connectivity.walkthrough_indices).position}#fig-connectivity`;
})).catch(() => {}); // without the page's data the links keep their plain #fig-connectivity
walkthroughLinks.forEach((link) => {
  link.addEventListener("click", async (event) => {
    event.preventDefault();
    const { paper } = await data;
    const { position, mark } = walkthroughTarget(link, paper.connectivity.walkthrough_indices);
    requestView({ text: null, position, word: null }, { mark });
    scrollToFigure(connectivityFigure);
  });
});

// A permalink opens on Figure 4, with focus on its first panel for keyboard readers.
if (hasViewState()) revealFigure(connectivityFigure, ".char-line");
