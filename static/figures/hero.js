// Figure 1: the units the reader chose (static/unit-choice.js) on the example sentence. Autoplay walks through a short
// span so the figure explains itself, and stops for good as soon as the reader does anything with it.

import { renderLegend } from "../connectivity-colour.js";
import { prefersReducedMotion, scrollToFigure } from "../motion.js";
import { ConnectivityExplorer } from "../text-panels.js";
import { renderUnitPicker } from "../unit-choice.js";

const d3 = window.d3;
const AUTOPLAY_SPAN = "formal study of grammar";
const AUTOPLAY_STEP_MS = 650;

export async function render(element, { choice, paper, limits }) {
  const body = d3.select(element).select(".figure-body").text("");
  const text = paper.connectivity.example_text;
  const heroLinks = paper.connectivity.walkthrough_indices.hero_links;
  const spanStart = text.indexOf(AUTOPLAY_SPAN) - 1;
  const spanEnd = spanStart + AUTOPLAY_SPAN.length;

  const toolbar = body.append("div").attr("class", "controls");
  renderLegend(toolbar.node(), "fraction of each unit's own maximum");
  // The note keeps its room while idle (hidden, not emptied), so starting or ending autoplay moves nothing.
  const autoplayNote = toolbar.append("span").attr("class", "autoplay-note idle")
    .property("hidden", prefersReducedMotion())
    .text("Playing through “formal study of grammar”; hover or press a key to take over.");
  const reset = toolbar.append("button").attr("type", "button").attr("class", "link reset-link").text("reset");

  renderUnitPicker(body, choice);

  let timer = null;
  const stopAutoplay = () => {
    if (timer !== null) clearInterval(timer);
    timer = null;
    autoplayNote.classed("idle", true);
  };
  const explorer = new ConnectivityExplorer(body.append("div").node(), {
    units: choice.units,
    limits,
    onInteract: stopAutoplay,
  });
  choice.onChange((units) => explorer.setUnits(units));
  const startAutoplay = () => {
    stopAutoplay();
    explorer.select(spanStart);
    if (prefersReducedMotion()) return;
    autoplayNote.classed("idle", false);
    timer = setInterval(() => {
      if (explorer.position >= spanEnd) stopAutoplay();
      else explorer.select(explorer.position + 1);
    }, AUTOPLAY_STEP_MS);
  };

  // Any pointer or keyboard activity inside the figure counts as taking over.
  element.addEventListener("pointerdown", stopAutoplay);
  element.addEventListener("keydown", stopAutoplay);
  reset.on("click", startAutoplay);
  document.querySelectorAll("[data-hero-link]").forEach((link) => {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      stopAutoplay();
      explorer.select(heroLinks[Number(link.dataset.heroLink)]);
      scrollToFigure(element, "nearest");
    });
  });

  await explorer.load(text, { position: spanStart });
  element.querySelector(".figure-body")?.removeAttribute("aria-busy");
  startAutoplay();
}
