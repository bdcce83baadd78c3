// Motion respects the reader's "reduce motion" setting: no smooth scrolling, no autoplay.
// Moving the reader to a figure also moves keyboard focus there.

export function prefersReducedMotion() {
  return window.matchMedia("(prefers-reduced-motion: reduce)").matches;
}

export function scrollToFigure(element, block = "start") {
  element?.scrollIntoView({ behavior: prefersReducedMotion() ? "auto" : "smooth", block });
}

/**
 * Brings a figure into view and moves keyboard focus to `focusSelector` inside it: aimed at once,
 * so a lazy figure starts loading, and again once it has drawn, in case anything above it changed
 * height meanwhile.
 */
export function revealFigure(element, focusSelector) {
  scrollToFigure(element);
  whenRendered(element).then(() => {
    // Only a few pixels' correction, so no animation: text loading below the figure could cut a
    // smooth scroll short of its mark.
    element.scrollIntoView({ block: "start" });
    element.querySelector(focusSelector)?.focus({ preventScroll: true });
    keepAligned(element);
  });
}

// What a reader does to move the page themselves: from then on the page leaves the scroll position alone.
const READER_MOVES = ["wheel", "touchstart", "pointerdown", "keydown"];
const ALIGNED_MS = 3000;

/**
 * Figures above may still be drawing when this one has (their unit pickers, their panels): for a few
 * seconds, or until the reader moves the page, every change of the page's height aims at the figure again.
 */
function keepAligned(element) {
  const observer = new ResizeObserver(() => element.scrollIntoView({ block: "start" }));
  const stop = () => {
    observer.disconnect();
    READER_MOVES.forEach((type) => window.removeEventListener(type, stop));
  };
  READER_MOVES.forEach((type) => window.addEventListener(type, stop, { passive: true }));
  observer.observe(document.body);
  setTimeout(stop, ALIGNED_MS);
}

function whenRendered(element) {
  return new Promise((resolve) => {
    if (element.dataset.rendered) resolve();
    else new MutationObserver((changes, observer) => {
      if (!element.dataset.rendered) return;
      observer.disconnect();
      resolve();
    }).observe(element, { attributes: true, attributeFilter: ["data-rendered"] });
  });
}
