// Figure 2: a diagram of one step of each unit, drawn from the layouts below, behind accessible tabs.
// Layouts are in a 620 x 300 box: `layers` are learned gates (rectangles), `ops` element-wise
// operations (circles), `ports` the labelled inputs and outputs, `wires` polylines ending in arrows
// (`arrow: false` for a bus that only feeds the wires branching off it).

const d3 = window.d3;
const WIDTH = 620;
const HEIGHT = 300;

// The LSTM and the Nested LSTM take and hand on the same state: c and h, read left, written right.
const CELL_STATE_PORTS = [
  { label: "c", sub: "t−1", x: 6, y: 50 },
  { label: "c", sub: "t", x: 594, y: 50 },
  { label: "h", sub: "t−1", x: 6, y: 230 },
  { label: "h", sub: "t", x: 594, y: 230 },
  { label: "x", sub: "t", x: 92, y: 292 },
];

const LAYOUTS = {
  gru: {
    ports: [
      { label: "h", sub: "t−1", x: 6, y: 50 },
      { label: "h", sub: "t", x: 594, y: 50 },
      { label: "x", sub: "t", x: 112, y: 292 },
    ],
    layers: [
      { label: "σ", gate: "r", x: 160, y: 170 },
      { label: "σ", gate: "z", x: 250, y: 170 },
      { label: "tanh", gate: "n", x: 400, y: 170 },
    ],
    ops: [
      { label: "×", x: 330, y: 110 },
      { label: "×", x: 480, y: 50 },
      { label: "1−", x: 480, y: 120 },
      { label: "×", x: 540, y: 120 },
      { label: "+", x: 540, y: 50 },
    ],
    wires: [
      { points: [[40, 50], [468, 50]], state: true },
      { points: [[492, 50], [528, 50]], state: true },
      { points: [[552, 50], [588, 50]], state: true },
      { points: [[100, 50], [100, 230], [400, 230]], arrow: false },
      { points: [[120, 278], [120, 230]] },
      { points: [[160, 230], [160, 190]] },
      { points: [[250, 230], [250, 190]] },
      { points: [[400, 230], [400, 190]] },
      { points: [[160, 150], [160, 110], [318, 110]] },
      { points: [[330, 50], [330, 98]] },
      { points: [[330, 122], [330, 170], [375, 170]] },
      { points: [[250, 150], [250, 85], [480, 85], [480, 62]] },
      { points: [[480, 85], [480, 108]] },
      { points: [[492, 120], [528, 120]] },
      { points: [[425, 170], [540, 170], [540, 132]] },
      { points: [[540, 108], [540, 62]] },
    ],
    notes: [],
  },
  lstm: {
    ports: CELL_STATE_PORTS,
    layers: [
      { label: "σ", gate: "f", x: 160, y: 170 },
      { label: "σ", gate: "i", x: 260, y: 170 },
      { label: "tanh", gate: "g", x: 360, y: 170 },
      { label: "σ", gate: "o", x: 450, y: 170 },
    ],
    ops: [
      { label: "×", x: 240, y: 50 },
      { label: "+", x: 360, y: 50 },
      { label: "×", x: 360, y: 110 },
      { label: "tanh", x: 520, y: 110, wide: true },
      { label: "×", x: 520, y: 170 },
    ],
    wires: [
      { points: [[40, 50], [228, 50]], state: true },
      { points: [[252, 50], [348, 50]], state: true },
      { points: [[372, 50], [588, 50]], state: true },
      { points: [[40, 230], [450, 230]], arrow: false },
      { points: [[100, 278], [100, 230]] },
      { points: [[160, 230], [160, 190]] },
      { points: [[260, 230], [260, 190]] },
      { points: [[360, 230], [360, 190]] },
      { points: [[450, 230], [450, 190]] },
      { points: [[160, 150], [160, 95], [240, 95], [240, 62]] },
      { points: [[260, 150], [260, 110], [348, 110]] },
      { points: [[360, 150], [360, 122]] },
      { points: [[360, 98], [360, 62]] },
      { points: [[520, 50], [520, 96]] },
      { points: [[520, 124], [520, 158]] },
      { points: [[475, 170], [508, 170]] },
      { points: [[520, 182], [520, 230], [588, 230]], state: true },
    ],
    notes: [],
  },
  nlstm: {
    ports: CELL_STATE_PORTS,
    inner: { x: 285, y: 18, width: 150, height: 64, label: "inner LSTM", note: "own memory c⁽¹⁾" },
    layers: [
      { label: "σ", gate: "f", x: 160, y: 170 },
      { label: "σ", gate: "i", x: 260, y: 170 },
      { label: "W·", gate: "j", x: 360, y: 170 },
      { label: "σ", gate: "o", x: 450, y: 170 },
    ],
    ops: [
      { label: "×", x: 240, y: 50 },
      { label: "×", x: 360, y: 120 },
      { label: "tanh", x: 520, y: 110, wide: true },
      { label: "×", x: 520, y: 170 },
    ],
    wires: [
      { points: [[40, 50], [228, 50]], state: true },
      { points: [[252, 50], [285, 50]], state: true },
      { points: [[435, 50], [588, 50]], state: true },
      { points: [[40, 230], [450, 230]], arrow: false },
      { points: [[100, 278], [100, 230]] },
      { points: [[160, 230], [160, 190]] },
      { points: [[260, 230], [260, 190]] },
      { points: [[360, 230], [360, 190]] },
      { points: [[450, 230], [450, 190]] },
      { points: [[160, 150], [160, 95], [240, 95], [240, 62]] },
      { points: [[260, 150], [260, 120], [348, 120]] },
      { points: [[360, 150], [360, 132]] },
      { points: [[360, 108], [360, 82]] },
      { points: [[520, 50], [520, 96]] },
      { points: [[520, 124], [520, 158]] },
      { points: [[475, 170], [508, 170]] },
      { points: [[520, 182], [520, 230], [588, 230]], state: true },
    ],
    notes: [
      { text: "where the LSTM adds, the Nested LSTM hands both products to an inner LSTM", x: 340, y: 275 },
    ],
  },
};

const UNIT_TITLES = { gru: "GRU", lstm: "LSTM", nlstm: "Nested LSTM" };

export function render(element) {
  element.querySelectorAll("[data-diagram]").forEach((container) => drawDiagram(container, container.dataset.diagram));
  setUpTabs(element);
}

function drawDiagram(container, unitId) {
  const layout = LAYOUTS[unitId];
  const svg = d3.select(container).append("svg").attr("viewBox", `0 0 ${WIDTH} ${HEIGHT}`)
    .attr("role", "img").attr("aria-label", `Diagram of one ${UNIT_TITLES[unitId]} step`);
  const markerId = `arrow-${unitId}`;
  svg.append("defs").append("marker").attr("id", markerId).attr("viewBox", "0 0 10 10").attr("refX", 9).attr("refY", 5)
    .attr("markerUnits", "userSpaceOnUse").attr("markerWidth", 9).attr("markerHeight", 9).attr("orient", "auto")
    .append("path").attr("d", "M0,0 L10,5 L0,10 z").attr("fill", "#444");

  if (layout.inner) {
    const inner = layout.inner;
    const group = svg.append("g").attr("class", "inner-unit");
    group.append("rect").attr("class", "diagram-inner").attr("x", inner.x).attr("y", inner.y)
      .attr("width", inner.width).attr("height", inner.height).attr("rx", 8);
    group.append("text").attr("class", "diagram-label").attr("x", inner.x + inner.width / 2).attr("y", inner.y + 24).text(inner.label);
    group.append("text").attr("class", "diagram-caption").attr("text-anchor", "middle")
      .attr("x", inner.x + inner.width / 2).attr("y", inner.y + 46).text(inner.note);
  }

  svg.append("g").selectAll("polyline").data(layout.wires).join("polyline")
    .attr("class", (wire) => `diagram-wire${wire.state ? " state" : ""}`)
    .attr("points", (wire) => wire.points.map((point) => point.join(",")).join(" "))
    .attr("marker-end", (wire) => (wire.arrow === false ? null : `url(#${markerId})`));

  const layers = svg.append("g").selectAll("g").data(layout.layers).join("g")
    .attr("transform", (layer) => `translate(${layer.x},${layer.y})`);
  layers.append("rect").attr("class", "diagram-layer").attr("x", -25).attr("y", -20).attr("width", 50).attr("height", 40).attr("rx", 4);
  layers.append("text").attr("class", "diagram-label").text((layer) => layer.label);
  layers.append("text").attr("class", "diagram-port").attr("x", 30).attr("y", -24).text((layer) => layer.gate);

  const ops = svg.append("g").selectAll("g").data(layout.ops).join("g")
    .attr("transform", (op) => `translate(${op.x},${op.y})`);
  ops.append("ellipse").attr("class", "diagram-op").attr("rx", (op) => (op.wide ? 22 : 12)).attr("ry", (op) => (op.wide ? 14 : 12));
  ops.append("text").attr("class", "diagram-label").text((op) => op.label);

  const ports = svg.append("g").selectAll("text").data(layout.ports).join("text")
    .attr("class", "diagram-port").attr("x", (port) => port.x).attr("y", (port) => port.y);
  ports.append("tspan").text((port) => port.label);
  ports.append("tspan").attr("baseline-shift", "sub").attr("font-size", "10px").text((port) => port.sub);

  svg.append("g").selectAll("text").data(layout.notes).join("text")
    .attr("class", "diagram-caption").attr("text-anchor", "middle").attr("x", (note) => note.x).attr("y", (note) => note.y)
    .text((note) => note.text);
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
}
