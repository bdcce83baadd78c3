// A region that scrolls sideways (a wide table or equation on a phone) must be reachable by
// keyboard; one that fits needs no extra tab stop. Each is focusable only while it overflows.

const SCROLLERS = ".table-scroll, math[display='block']";
const observer = new ResizeObserver((entries) => entries.forEach((entry) => update(entry.target)));

function update(element) {
  if (element.scrollWidth > element.clientWidth) element.setAttribute("tabindex", "0");
  else element.removeAttribute("tabindex");
}

/** Watches every scroller inside `root` (again safe: observing twice is a no-op). */
export function watchScrollers(root) {
  root.querySelectorAll(SCROLLERS).forEach((element) => {
    update(element);
    observer.observe(element);
  });
}
