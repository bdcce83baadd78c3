// The units the page offers: the models the server lists (/api/models), in its order, each with a colour
// from one palette by position (the same in every figure, whichever units a figure shows) and, where the
// paper trained the same model, the paper's name for it (paper.json's model_ids), which keys the paper's
// published numbers.

// ColorBrewer's Dark2, reordered so the paper's three units keep the colours they always had here.
const PALETTE = ["#d95f02", "#7570b3", "#1b9e77", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"];

/**
 * One entry per served model: {id, name, colour, paperName, model}, `paperName` null for a model the
 * paper has no counterpart of. Past the palette's eight colours they repeat.
 */
export function servedUnits(models, paper) {
  return models.map((model, index) => ({
    id: model.id,
    name: model.name,
    colour: PALETTE[index % PALETTE.length],
    paperName: Object.hasOwn(paper.model_ids.names, model.id) ? paper.model_ids.names[model.id] : null,
    model,
  }));
}

/** Gives an element and its descendants the unit's colour, as the CSS variable --unit-colour. */
export function paintUnitColour(element, unit) {
  element.style.setProperty("--unit-colour", unit.colour);
}
