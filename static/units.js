// The three units in the order every figure shows them, their colours (the CSS --gru/--lstm/--nlstm
// variables carry the same values for HTML elements) and their names in paper.json.

export const UNITS = [
  { id: "gru", paperName: "GRU", colour: "#d95f02" },
  { id: "lstm", paperName: "LSTM", colour: "#7570b3" },
  { id: "nlstm", paperName: "Nested LSTM", colour: "#1b9e77" },
];

/** The units the server has loaded, in display order, each with the server's display name. */
export function loadedUnits(models) {
  return UNITS.flatMap((unit) => {
    const model = models.find((candidate) => candidate.id === unit.id);
    return model ? [{ ...unit, name: model.name, model }] : [];
  });
}

export function unitById(id) {
  return UNITS.find((unit) => unit.id === id);
}
