"""The counterfactual's edit: one word of a normalised text replaced, checked against what a counterfactual can ask.

A unit reads forwards, so only a word that ends before the output position can change the guesses
there; the word is replaced by another vocabulary word of its length (as the copy test of
training/intervention.py swaps words), by a word the reader types, or by spaces. The edited text is
not normalised again, so a word of spaces stays in place and positions before the word keep their index.
"""

import random
from dataclasses import dataclass

from app.engine import InputError
from app.schemas import Replacement
from models.text import normalise
from models.vocab import Vocabulary


@dataclass(frozen=True)
class WordEdit:
    text: str  # the normalised original
    edited_text: str
    start: int  # the replaced word's first letter
    end: int  # just past its last letter
    replacement: str

    @property
    def original(self) -> str:
        return self.text[self.start : self.end]

    def moved(self, position: int) -> int:
        """Where a character after the word lands in the edited text."""
        return position + len(self.replacement) - (self.end - self.start)


def word_at(text: str, index: int) -> tuple[int, int]:
    """The letters around `index` of a normalised text: [start, end), or an InputError on `replace_at` when it is a space."""
    if not 0 <= index < len(text):
        raise InputError("replace_at", f"index {index} is out of range; the normalised text has positions 0 to {len(text) - 1}")
    if text[index] == " ":
        raise InputError("replace_at", f"index {index} is a space; point at a letter of the word to replace")
    start = text.rfind(" ", 0, index) + 1
    end = text.find(" ", index)
    return start, len(text) if end == -1 else end


def other_word(vocabulary: Vocabulary, word: str, draw: int) -> str:
    """Another real vocabulary word of the same length, the same one for the same word and draw (seeded by both)."""
    candidates = [candidate for candidate in vocabulary.words_of_length(len(word)) if candidate != word]
    if not candidates:
        raise InputError("replace_with", f"no other vocabulary word has {len(word)} letters like {word!r}; type a replacement or use spaces")
    return random.Random(f"{word}:{draw}").choice(candidates)


def typed_replacement(typed: str | None) -> str:
    """The typed word as the models read it: letters only, lowercased, accents folded."""
    if typed is None:
        raise InputError("typed_word", "is missing; replace_with 'typed_word' needs the word to put in")
    word = normalise(typed).strip()
    if not typed.strip().isalpha() or not word or " " in word:
        raise InputError("typed_word", f"{typed!r} is not one word of letters; type letters only (a to z, accents are folded)")
    return word


def edit_word(
    text: str, position: int, replace_at: int, replace_with: Replacement, typed_word: str | None, draw: int, vocabulary: Vocabulary, max_chars: int
) -> WordEdit:
    """The edit a counterfactual asks for on normalised `text` at output `position`, or an InputError naming the field at fault."""
    if not 0 <= position < len(text):
        raise InputError("position", f"position {position} is out of range; the normalised text has positions 0 to {len(text) - 1}")
    start, end = word_at(text, replace_at)
    if end > position:
        raise InputError(
            "replace_at",
            f"the word {text[start:end]!r} (positions {start} to {end - 1}) does not end before position {position}: a unit reads "
            "forwards, so only an earlier word can change its guesses there",
        )
    if typed_word is not None and replace_with != "typed_word":
        raise InputError("typed_word", f"is only read with replace_with 'typed_word', not {replace_with!r}")
    if replace_with == "typed_word":
        replacement = typed_replacement(typed_word)
    elif replace_with == "spaces":
        replacement = " " * (end - start)
    else:
        replacement = other_word(vocabulary, text[start:end], draw)
    edited = text[:start] + replacement + text[end:]
    if len(edited) > max_chars:
        raise InputError("typed_word", f"makes the text {len(edited)} characters long; the limit is {max_chars}")
    return WordEdit(text=text, edited_text=edited, start=start, end=end, replacement=replacement)
