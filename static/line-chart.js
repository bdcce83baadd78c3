// A small line chart shared by Figures 5 and 6: axes, series, and a hover/keyboard read-out.
// It redraws at the container's width, so text stays legible on a phone.

const d3 = window.d3;
const MARGIN = { top: 12, right: 90, bottom: 42, left: 52 };
const NARROW_MARGIN_RIGHT = 16;

/**
 * @param container element to draw into (emptied first)
 * @param options.series [{key, colour, dash, className, points: [{x, y}], label?}] (label: text at the line's end)
 * @param options.x / options.y {label, domain, format, integer?} (integer: whole-number ticks only)
 * @param options.x.scale optional d3 scale factory (default d3.scaleLinear), with options.x.ticks the tick values it needs
 * @param options.x.name optional (x) => text naming the hovered x in the read-out (default: its tick format)
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
  const y = d3.scaleLinear().domain(low === high ? [low - 0.5, high + 0.5] : [low, high]).nice().range([height - margin.bottom, margin.top]);

  svg.append("g").attr("class", "grid").attr("transform", `translate(${margin.left},0)`)
    .call(d3.axisLeft(y).ticks(6).tickSize(-(width - margin.left - margin.right)).tickFormat(""))
    .call((grid) => grid.select(".domain").remove());
  svg.append("g").attr("class", "axis x-axis").attr("transform", `translate(0,${height - margin.bottom})`)
    .call(d3.axisBottom(x).tickValues(options.x.ticks ?? x.ticks(narrow ? 4 : 8).filter((tick) => !options.x.integer || Number.isInteger(tick)))
      .tickFormat(options.x.format));
  svg.append("g").attr("class", "axis y-axis").attr("transform", `translate(${margin.left},0)`)
    .call(d3.axisLeft(y).ticks(6).tickFormat(options.y.format));
  svg.append("text").attr("class", "axis-title").attr("x", (margin.left + width - margin.right) / 2).attr("y", height - 6)
    .attr("text-anchor", "middle").text(options.x.label);
  svg.append("text").attr("class", "axis-title").attr("transform", `translate(12,${(margin.top + height - margin.bottom) / 2}) rotate(-90)`)
    .attr("text-anchor", "middle").text(options.y.label);

  const line = d3.line().defined((point) => point.y !== null && point.y !== undefined).x((point) => x(point.x)).y((point) => y(point.y));
  svg.append("g").attr("class", "lines").selectAll("path").data(options.series).join("path")
    .attr("class", (series) => `series ${series.className ?? ""}`)
    .attr("data-series", (series) => series.key)
    .attr("stroke", (series) => series.colour)
    .attr("stroke-dasharray", (series) => series.dash ?? null)
    .attr("d", (series) => line(series.points));
  // A series of one or two points is invisible as a line alone.
  svg.append("g").selectAll("g").data(options.series.filter((series) => series.markers || series.points.length < 3)).join("g")
    .attr("fill", (series) => series.colour)
    .selectAll("circle").data((series) => series.points.filter((point) => point.y !== null)).join("circle")
    .attr("r", 2.5).attr("cx", (point) => x(point.x)).attr("cy", (point) => y(point.y));
  if (!narrow) {
    svg.append("g").selectAll("text").data(options.series.filter((series) => series.label)).join("text")
      .attr("class", "paper-label")
      .attr("x", (series) => x(lastDefined(series.points).x) + 4)
      .attr("y", (series) => y(lastDefined(series.points).y))
      .attr("dominant-baseline", "central")
      .text((series) => series.label);
  }

  const xValues = Array.from(new Set(options.series.flatMap((series) => series.points.map((point) => point.x)))).sort(d3.ascending);
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

/** A legend entry: a short line sample and its label. */
export function legendItem(parent, { colour, dash, label }) {
  const item = d3.select(parent).append("span");
  item.append("svg").attr("width", 24).attr("height", 10).attr("aria-hidden", "true")
    .append("line").attr("x1", 0).attr("x2", 24).attr("y1", 5).attr("y2", 5)
    .attr("stroke", colour).attr("stroke-width", 2).attr("stroke-dasharray", dash ?? null);
  item.append("span").text(` ${label}`);
  return item;
}

function lastDefined(points) {
  return points.filter((point) => point.y !== null && point.y !== undefined).at(-1);
}
