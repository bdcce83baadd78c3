// A row of toggle buttons, one per unit, in a fieldset with a legend: the unit picker of Figures 1, 3 and 4
// (static/unit-choice.js) and the legends of Figures 5 to 7 and Table 1, which hide and show a unit's series.
// The row is a toolbar, one tab stop whatever the number of units: the arrow keys move between its buttons and
// Space or Enter presses one. The last pressed button cannot be released, so a figure never goes empty.

const d3 = window.d3;
const STEPS = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
let rows = 0;

/**
 * @param parent d3 selection the fieldset is appended to
 * @param legend the fieldset's legend, which names the toolbar too
 * @param units the units to offer, in the order shown ({id, name, colour})
 * @param isShown (unit) => whether its button is pressed
 * @param onToggle (unit) => called when the reader presses or releases its button; the caller changes what
 *   isShown says and calls update()
 * @returns {update}: sets every button's state from isShown
 */
export function renderUnitToggles(parent, { legend, units, isShown, onToggle }) {
  const legendId = `unit-toggles-${rows += 1}`;
  const set = parent.append("fieldset").attr("class", "unit-toggles");
  set.append("legend").attr("id", legendId).text(legend);
  const toolbar = set.append("div").attr("role", "toolbar").attr("aria-labelledby", legendId).on("keydown", moveAmongButtons);
  const buttons = toolbar.selectAll("button").data(units).join("button")
    .attr("type", "button").attr("class", "unit-toggle").attr("data-unit", (unit) => unit.id)
    .attr("tabindex", (unit, index) => (index === 0 ? 0 : -1))
    .each(function colour(unit) {
      this.style.setProperty("--unit-colour", unit.colour);
    })
    .on("click", (event, unit) => {
      if (event.currentTarget.getAttribute("aria-disabled") !== "true") onToggle(unit);
    });
  buttons.append("span").attr("class", "unit-swatch").attr("aria-hidden", "true");
  buttons.append("span").text((unit) => unit.name);

  const update = () => {
    const pressed = units.filter(isShown).length;
    buttons.attr("aria-pressed", (unit) => String(isShown(unit)))
      // aria-disabled, not disabled: the button keeps its focus and its tab stop, and says why it does nothing.
      .attr("aria-disabled", (unit) => (pressed === 1 && isShown(unit) ? "true" : null))
      .attr("title", (unit) => (pressed === 1 && isShown(unit) ? "At least one unit stays shown" : null));
  };
  update();
  return { update };
}

function moveAmongButtons(event) {
  if (!(event.key in STEPS)) return;
  const buttons = [...event.currentTarget.querySelectorAll("button")];
  const next = buttons[(buttons.indexOf(document.activeElement) + STEPS[event.key] + buttons.length) % buttons.length];
  event.preventDefault();
  buttons.forEach((button) => button.setAttribute("tabindex", button === next ? "0" : "-1"));
  next.focus();
}

/**
 * A chart's or table's legend of units: every unit shown at first; `onChange(shownUnits)` after each press.
 * Returns a function that gives the units shown now.
 */
export function renderUnitLegend(parent, units, onChange) {
  const hidden = new Set();
  const shown = () => units.filter((unit) => !hidden.has(unit.id));
  const toggles = renderUnitToggles(parent, {
    legend: "Units",
    units,
    isShown: (unit) => !hidden.has(unit.id),
    onToggle: (unit) => {
      if (hidden.has(unit.id)) hidden.delete(unit.id);
      else hidden.add(unit.id);
      toggles.update();
      onChange(shown());
    },
  });
  return shown;
}
