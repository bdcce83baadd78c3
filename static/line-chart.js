// A small line chart shared by Figures 5, 6 and 7: axes, series with optional interval bands and markers, and a
// hover/keyboard read-out. It redraws at the container's width, so text stays legible on a phone.

const d3 = window.d3;
const MARGIN = { top: 12, right: 90, bottom: 42, left: 52 };
const NARROW_MARGIN_RIGHT = 16;
const MARK_HALF_HEIGHT = 6;
let clipIds = 0;

/**
 * @param container element to draw into (emptied first)
 * @param options.series [{key, colour, dash, className, points: [{x, y}], label?, band?, marker?}]
 *   label: text at the line's end; band: [{x, low, high}], a 95 % interval drawn as a shaded band;
 *   marker: "diamond" for hollow diamonds instead of dots (points that stand apart from the lines, such as the paper's)
 * @param options.x / options.y {label, domain, format, integer?, scale?, ticks?} (integer: whole-number ticks only;
 *   scale: a d3 scale factory, default d3.scaleLinear; ticks: the tick values it needs)
 * @param options.x.name optional (x) => text naming the hovered x in the read-out (default: its tick format)
 * @param options.marks optional [{x, y, colour}]: short upright strokes on a line (where something changed)
 * @param options.describe (x) => [{colour, dash, label, value}] rows for the read-out at x
 * @param options.ariaLabel summary for screen readers
 */
export function drawLineChart(container, options) {
  const frame = d3.select(container).text("").append("div").attr("class", "chart-frame")
    .attr("tabindex", 0).attr("role", "img").attr("aria-label", options.ariaLabel);
  const tooltip = frame.append("div").attr("class", "tooltip").attr("aria-hidden", "true");
  tooltip.node().hidden = true;
  const readout = d3.select(container).append("p").attr("class", "status").attr("aria-live", "polite");

  const width = Math.max(280, container.clientWidth || 640);
  const narrow = width < 520;
  const margin = { ...MARGIN, right: narrow ? NARROW_MARGIN_RIGHT : MARGIN.right };
  const height = Math.round(Math.min(380, Math.max(240, width * 0.48)));
  const svg = frame.append("svg").attr("viewBox", `0 0 ${width} ${height}`).attr("width", width).attr("height", height);
  const x = (options.x.scale ?? d3.scaleLinear)().domain(options.x.domain).range([margin.left, width - margin.right]);
  const xName = options.x.name ?? options.x.format;
  const [low, high] = options.y.domain;
  const y = (options.y.scale ?? d3.scaleLinear)().domain(low === high ? [low - 0.5, high + 0.5] : [low, high])
    .range([height - margin.bottom, margin.top]);
  if (!options.y.scale) y.nice();
  const yTicks = options.y.ticks ?? y.ticks(6);

  // Lines and bands stop at the plot's edges when the axis is zoomed in on part of them.
  const clipId = `chart-clip-${clipIds += 1}`;
  svg.append("clipPath").attr("id", clipId).append("rect")
    .attr("x", margin.left).attr("y", margin.top).attr("width", width - margin.left - margin.right).attr("height", height - margin.top - margin.bottom);

  svg.append("g").attr("class", "grid").attr("transform", `translate(${margin.left},0)`)
    .call(d3.axisLeft(y).tickValues(yTicks).tickSize(-(width - margin.left - margin.right)).tickFormat(""))
    .call((grid) => grid.select(".domain").remove());
  svg.append("g").attr("class", "axis x-axis").attr("transform", `translate(0,${height - margin.bottom})`)
    .call(d3.axisBottom(x).tickValues(options.x.ticks ?? x.ticks(narrow ? 4 : 8).filter((tick) => !options.x.integer || Number.isInteger(tick)))
      .tickFormat(options.x.format));
  svg.append("g").attr("class", "axis y-axis").attr("transform", `translate(${margin.left},0)`)
    .call(d3.axisLeft(y).tickValues(yTicks).tickFormat(options.y.format));
  svg.append("text").attr("class", "axis-title").attr("x", (margin.left + width - margin.right) / 2).attr("y", height - 6)
    .attr("text-anchor", "middle").text(options.x.label);
  svg.append("text").attr("class", "axis-title").attr("transform", `translate(12,${(margin.top + height - margin.bottom) / 2}) rotate(-90)`)
    .attr("text-anchor", "middle").text(options.y.label);

  const plotted = svg.append("g").attr("clip-path", `url(#${clipId})`);
  const area = d3.area().x((point) => x(point.x)).y0((point) => y(point.low)).y1((point) => y(point.high));
  plotted.append("g").attr("class", "bands").selectAll("path").data(options.series.filter((series) => series.band?.length)).join("path")
    .attr("class", "band").attr("data-series", (series) => series.key).attr("fill", (series) => series.colour)
    .attr("d", (series) => area(series.band));
  const line = d3.line().defined(defined).x((point) => x(point.x)).y((point) => y(point.y));
  plotted.append("g").attr("class", "lines").selectAll("path").data(options.series.filter((series) => !series.marker)).join("path")
    .attr("class", (series) => `series ${series.className ?? ""}`)
    .attr("data-series", (series) => series.key)
    .attr("stroke", (series) => series.colour)
    .attr("stroke-dasharray", (series) => series.dash ?? null)
    .attr("d", (series) => line(series.points));
  // A series of one or two points is invisible as a line alone.
  plotted.append("g").attr("class", "dots").selectAll("g").data(options.series.filter((series) => !series.marker && (series.markers || series.points.length < 3)))
    .join("g").attr("fill", (series) => series.colour)
    .selectAll("circle").data((series) => series.points.filter(defined)).join("circle")
    .attr("r", 2.5).attr("cx", (point) => x(point.x)).attr("cy", (point) => y(point.y));
  const diamond = d3.symbol(d3.symbolDiamond, 70);
  plotted.append("g").attr("class", "diamonds").selectAll("g").data(options.series.filter((series) => series.marker === "diamond")).join("g")
    .attr("class", (series) => `series-marker ${series.className ?? ""}`).attr("data-series", (series) => series.key)
    .attr("stroke", (series) => series.colour)
    .selectAll("path").data((series) => series.points.filter(defined)).join("path")
    .attr("class", "paper-final-marker").attr("transform", (point) => `translate(${x(point.x)},${y(point.y)})`).attr("d", diamond);
  plotted.append("g").attr("class", "marks").selectAll("line").data(options.marks ?? []).join("line")
    .attr("class", "switch-marker").attr("stroke", (mark) => mark.colour)
    .attr("x1", (mark) => x(mark.x)).attr("x2", (mark) => x(mark.x))
    .attr("y1", (mark) => y(mark.y) - MARK_HALF_HEIGHT).attr("y2", (mark) => y(mark.y) + MARK_HALF_HEIGHT);
  if (!narrow) {
    svg.append("g").selectAll("text").data(options.series.filter((series) => series.label && series.points.some(defined))).join("text")
      .attr("class", "paper-label")
      .attr("x", (series) => x(lastDefined(series.points).x) + 4)
      .attr("y", (series) => y(lastDefined(series.points).y))
      .attr("dominant-baseline", "central")
      .text((series) => series.label);
  }

  // Only the x values some series has a value at: the keys never land on an empty place.
  const xValues = Array.from(new Set(options.series.flatMap((series) => series.points.filter(defined).map((point) => point.x)))).sort(d3.ascending);
  const rule = svg.append("line").attr("class", "hover-rule").attr("y1", margin.top).attr("y2", height - margin.bottom);
  rule.attr("visibility", "hidden");
  let current = null;

  const show = (xValue) => {
    current = xValue;
    const rows = options.describe(xValue);
    rule.attr("x1", x(xValue)).attr("x2", x(xValue)).attr("visibility", "visible");
    tooltip.node().hidden = false;
    tooltip.text("");
    tooltip.append("div").append("strong").text(`${options.x.label}: ${xName(xValue)}`);
    const rowsSelection = tooltip.append("table").selectAll("tr").data(rows).join("tr");
    rowsSelection.append("td").append("svg").attr("width", 22).attr("height", 8)
      .append("line").attr("x1", 0).attr("x2", 22).attr("y1", 4).attr("y2", 4)
      .attr("stroke", (row) => row.colour).attr("stroke-width", 2).attr("stroke-dasharray", (row) => row.dash ?? null);
    rowsSelection.append("td").text((row) => row.label);
    rowsSelection.append("td").text((row) => row.value);
    const tooltipNode = tooltip.node();
    const left = x(xValue) + 12 + tooltipNode.offsetWidth > width ? x(xValue) - 12 - tooltipNode.offsetWidth : x(xValue) + 12;
    tooltipNode.style.left = `${Math.max(0, left)}px`;
    tooltipNode.style.top = `${margin.top}px`;
    readout.text(`${options.x.label} ${xName(xValue)}: ${rows.map((row) => `${row.label} ${row.value}`).join(", ")}`);
  };
  const hide = () => {
    rule.attr("visibility", "hidden");
    tooltip.node().hidden = true;
  };
  const nearest = (pixel) => {
    const value = x.invert(pixel);
    return xValues[d3.minIndex(xValues, (candidate) => Math.abs(candidate - value))];
  };

  svg.on("pointermove", (event) => show(nearest(d3.pointer(event)[0])))
    .on("pointerleave", hide);
  frame.on("keydown", (event) => {
    const last = xValues.length - 1;
    const currentIndex = current === null ? -1 : xValues.indexOf(current);
    const targets = { ArrowRight: currentIndex + 1, ArrowLeft: currentIndex - 1, Home: 0, End: last };
    if (!(event.key in targets) || xValues.length === 0) return;
    event.preventDefault();
    show(xValues[Math.max(0, Math.min(last, targets[event.key]))]);
  }).on("blur", hide);
}

/** Draws now and again whenever the container's width changes (phone rotation, window resize). */
export function drawResponsive(container, draw) {
  let lastWidth = container.clientWidth;
  draw();
  new ResizeObserver(() => {
    if (container.clientWidth === lastWidth) return;
    lastWidth = container.clientWidth;
    draw();
  }).observe(container);
}

/** A legend entry: a short line sample (or a hollow diamond) and its label. */
export function legendItem(parent, { colour, dash, label, marker }) {
  const item = d3.select(parent).append("span");
  const sample = item.append("svg").attr("width", 24).attr("height", 10).attr("aria-hidden", "true");
  if (marker === "diamond") {
    sample.append("path").attr("transform", "translate(12,5)").attr("d", d3.symbol(d3.symbolDiamond, 40))
      .attr("fill", "none").attr("stroke", colour).attr("stroke-width", 1.6);
  } else {
    sample.append("line").attr("x1", 0).attr("x2", 24).attr("y1", 5).attr("y2", 5)
      .attr("stroke", colour).attr("stroke-width", 2).attr("stroke-dasharray", dash ?? null);
  }
  item.append("span").text(` ${label}`);
  return item;
}

/** The last point at or before x of points sorted by x, or null where x lies outside the series (before it or past its end). */
export function pointAt(points, xValue) {
  const drawn = points.filter(defined);
  if (drawn.length === 0 || xValue < drawn[0].x || xValue > drawn.at(-1).x) return null;
  return drawn[d3.bisector((point) => point.x).right(drawn, xValue) - 1];
}

function defined(point) {
  return point.y !== null && point.y !== undefined;
}

function lastDefined(points) {
  return points.filter(defined).at(-1);
}
