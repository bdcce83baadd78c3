// A region that scrolls sideways (a wide table, diagram or equation on a phone) must be reachable by
// keyboard; one that fits needs no extra tab stop. Each is focusable only while it overflows, and
// marked data-overflows then, so that the stylesheet can show a visible cue.

const SCROLLERS = ".table-scroll, .diagram-scroll, math[display='block']";
const observer = new ResizeObserver((entries) => entries.forEach((entry) => update(entry.target)));

function update(element) {
  const overflows = element.scrollWidth > element.clientWidth;
  if (overflows) element.setAttribute("tabindex", "0");
  else element.removeAttribute("tabindex");
  element.toggleAttribute("data-overflows", overflows);
}

/** Watches every scroller inside `root` (again safe: observing twice is a no-op). */
export function watchScrollers(root) {
  root.querySelectorAll(SCROLLERS).forEach((element) => {
    update(element);
    observer.observe(element);
  });
}
