// Motion respects the reader's "reduce motion" setting: no smooth scrolling, no autoplay.

export function prefersReducedMotion() {
  return window.matchMedia("(prefers-reduced-motion: reduce)").matches;
}

export function scrollToFigure(element, block = "start") {
  element?.scrollIntoView({ behavior: prefersReducedMotion() ? "auto" : "smooth", block });
}
