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

/** The whole-word occurrence of `word` that ends last before the word at `position` begins: {start, end}, or null. */
export function earlierOccurrence(text, word, position) {
  const current = Math.max(0, text.lastIndexOf(" ", position));
  for (let start = text.lastIndexOf(` ${word} `, current - word.length - 1); start !== -1; start = text.lastIndexOf(` ${word} `, start - 1)) {
    if (start + 1 + word.length <= current) return { start: start + 1, end: start + 1 + word.length };
  }
  return null;
}

/** The share of row[0..position] on the characters of `span` ({start, end}, end excluded). */
export function shareOn(row, span, position) {
  let on = 0;
  let total = 0;
  for (let index = 0; index <= position; index += 1) {
    total += row[index];
    if (index >= span.start && index < span.end) on += row[index];
  }
  return total > 0 ? on / total : 0;
}
