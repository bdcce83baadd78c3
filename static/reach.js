// Where a connectivity row lies, by the rule of models/memory.py (which computes the test-set
// profiles and the paper's): "the current word" starts at the space in front of it, and a space
// belongs to the word after it.

/** The share of row[0..position] on characters before the space that starts the word at `position`. */
export function shareBeforeWord(row, text, position) {
  const start = Math.max(0, text.lastIndexOf(" ", position));
  let before = 0;
  let total = 0;
  for (let index = 0; index <= position; index += 1) {
    total += row[index];
    if (index < start) before += row[index];
  }
  return total > 0 ? before / total : 0;
}
