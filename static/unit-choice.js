// Which of the served units Figures 1, 3 and 4 show. More units than fit side by side can be served, so these
// figures start with the paper's units and the reader adds or removes any other: one choice for the three figures,
// kept in the URL (?units=gru,lstm,rnn) so that a permalink shows the same panels. The figures ask the server
// about the units chosen only, and listen here for changes.

import { readUnitChoice, writeUnitChoice } from "./permalink.js";
import { renderUnitToggles } from "./unit-toggles.js";

export class UnitChoice {
  /** @param served servedUnits(models, paper), in the server's order */
  constructor(served) {
    this.served = served;
    // The paper's units (paper.json's model_ids) where the server has any of them, else every served unit.
    const paperUnits = served.filter((unit) => unit.paperName !== null);
    this.defaultIds = (paperUnits.length ? paperUnits : served).map((unit) => unit.id);
    // Ids the server does not serve (a unit since removed, a typo) are left out; none left: the default.
    const asked = new Set(readUnitChoice());
    const known = served.filter((unit) => asked.has(unit.id)).map((unit) => unit.id);
    this.ids = known.length ? known : this.defaultIds;
    this.listeners = [];
  }

  /** The units chosen, in the server's order. */
  get units() {
    return this.served.filter((unit) => this.ids.includes(unit.id));
  }

  has(unit) {
    return this.ids.includes(unit.id);
  }

  /** Adds the unit, or removes it unless it is the last one shown; writes the URL and tells the figures. */
  toggle(unit) {
    if (this.has(unit) && this.ids.length === 1) return;
    const next = this.has(unit) ? this.ids.filter((id) => id !== unit.id) : [...this.ids, unit.id];
    this.ids = this.served.filter((each) => next.includes(each.id)).map((each) => each.id);
    const isDefault = this.ids.length === this.defaultIds.length && this.ids.every((id) => this.defaultIds.includes(id));
    writeUnitChoice(isDefault ? null : this.ids);
    this.listeners.forEach((listener) => listener(this.units));
  }

  /** Calls `listener(units)` after every change. */
  onChange(listener) {
    this.listeners.push(listener);
  }
}

/** The picker: a toggle button per served unit, labelled with its name; every figure's picker shows the one choice. */
export function renderUnitPicker(parent, choice) {
  const toggles = renderUnitToggles(parent.append("div").attr("class", "controls unit-picker"), {
    legend: "Units shown",
    units: choice.served,
    isShown: (unit) => choice.has(unit),
    onToggle: (unit) => choice.toggle(unit),
  });
  choice.onChange(() => toggles.update());
}
