// Figure 2: one step of each served unit, behind accessible tabs. A unit's diagram is the SVG the
// server sends (/api/models' `diagram`), shown as an image so nothing in it can run; a unit without
// one gets a generic drawing. Beside it, the server's description and, for the units the article
// writes out, its equations (the page's <template data-equations="unit">). On a phone the diagram
// keeps a width at which its labels read (a min-width in the stylesheet) and scrolls sideways.

const d3 = window.d3;
const WIDTH = 620;
const HEIGHT = 300;
// The generic drawing: one box for the whole unit, the state passing through it from left to right.
const BOX = { x: 210, y: 90, width: 200, height: 100 };
const STATE_Y = BOX.y + BOX.height / 2;
const INPUT_X = BOX.x + BOX.width / 2;

export function render(element, { units }) {
  const body = d3.select(element).select(".figure-body").text("");
  const tabList = body.append("div").attr("class", "unit-tabs").attr("role", "tablist").attr("aria-label", "Recurrent unit");
  tabList.selectAll("button").data(units).join("button")
    .attr("type", "button").attr("role", "tab").attr("id", (unit) => `tab-${unit.id}`).attr("aria-controls", (unit) => `panel-${unit.id}`)
    .attr("data-unit", (unit) => unit.id)
    .text((unit) => unit.name);
  const panels = body.selectAll("div.unit-panel").data(units).join("div")
    .attr("class", "unit-panel").attr("role", "tabpanel").attr("id", (unit) => `panel-${unit.id}`)
    .attr("aria-labelledby", (unit) => `tab-${unit.id}`).attr("data-unit", (unit) => unit.id);
  panels.each(function fill(unit) {
    const panel = d3.select(this);
    const diagram = panel.append("div").attr("class", "unit-diagram").append("div").attr("class", "diagram-scroll")
      .attr("role", "region").attr("aria-label", `Diagram of one ${unit.name} step`);
    if (unit.model.diagram) showServedDiagram(diagram, unit);
    else drawGenericDiagram(diagram, unit);
    const text = panel.append("div").attr("class", "unit-equations");
    text.append("p").attr("class", "unit-description").text(unit.model.description);
    const equations = element.querySelector(`template[data-equations="${CSS.escape(unit.model.unit)}"]`);
    if (equations) text.node().append(equations.content.cloneNode(true));
  });
  setUpTabs(element);
}

function showServedDiagram(container, unit) {
  container.append("img")
    .attr("src", `data:image/svg+xml,${encodeURIComponent(unit.model.diagram)}`)
    .attr("alt", `Diagram of one ${unit.name} step`);
}

function drawGenericDiagram(container, unit) {
  const svg = container.append("svg").attr("class", "generic-diagram").attr("viewBox", `0 0 ${WIDTH} ${HEIGHT}`)
    .attr("role", "img").attr("aria-label", `Diagram of one ${unit.name} step: the input and the previous state in, the new state out`);
  const markerId = `arrow-${unit.id}`;
  svg.append("defs").append("marker").attr("id", markerId).attr("viewBox", "0 0 10 10").attr("refX", 9).attr("refY", 5)
    .attr("markerUnits", "userSpaceOnUse").attr("markerWidth", 9).attr("markerHeight", 9).attr("orient", "auto")
    .append("path").attr("class", "diagram-arrow").attr("d", "M0,0 L10,5 L0,10 z");
  const wires = [
    { points: [[40, STATE_Y], [BOX.x, STATE_Y]], state: true },
    { points: [[BOX.x + BOX.width, STATE_Y], [588, STATE_Y]], state: true },
    { points: [[INPUT_X, 278], [INPUT_X, BOX.y + BOX.height]] },
  ];
  svg.append("g").selectAll("polyline").data(wires).join("polyline")
    .attr("class", (wire) => `diagram-wire${wire.state ? " state" : ""}`)
    .attr("points", (wire) => wire.points.map((point) => point.join(",")).join(" "))
    .attr("marker-end", `url(#${markerId})`);
  svg.append("rect").attr("class", "diagram-layer").attr("x", BOX.x).attr("y", BOX.y).attr("width", BOX.width).attr("height", BOX.height).attr("rx", 6);
  svg.append("text").attr("class", "diagram-label").attr("x", INPUT_X).attr("y", STATE_Y).text(unit.name);
  const ports = [
    { label: "h", sub: "t−1", x: 6, y: STATE_Y },
    { label: "h", sub: "t", x: 594, y: STATE_Y },
    { label: "x", sub: "t", x: INPUT_X - 8, y: 292 },
  ];
  const portText = svg.append("g").selectAll("text").data(ports).join("text")
    .attr("class", "diagram-port").attr("x", (port) => port.x).attr("y", (port) => port.y);
  portText.append("tspan").text((port) => port.label);
  portText.append("tspan").attr("baseline-shift", "sub").attr("font-size", "10px").text((port) => port.sub);
}

/** WAI-ARIA tabs: click or arrow keys switch; only the selected tab is in the tab order. */
function setUpTabs(element) {
  const tabs = Array.from(element.querySelectorAll('[role="tab"]'));
  const select = (tab) => {
    tabs.forEach((candidate) => {
      const selected = candidate === tab;
      candidate.setAttribute("aria-selected", String(selected));
      candidate.tabIndex = selected ? 0 : -1;
      document.getElementById(candidate.getAttribute("aria-controls")).hidden = !selected;
    });
  };
  tabs.forEach((tab, index) => {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      const target = tabs[(moves[event.key] + tabs.length) % tabs.length];
      select(target);
      target.focus();
    });
  });
  select(tabs[0]);
}
