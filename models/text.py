"""The one text normaliser and the character vocabulary, shared by training and serving.

The rules reproduce text8's: accents folded, lowercase, digits spelled out one by
one, every other character a space, runs of spaces collapsed. On top of that the
text always starts with exactly one space, because in the autocomplete task the
space *before* a word already predicts that word.
"""

import re
import unicodedata

PAD = 0
SPACE = 1
CHARS: list[str] = ["<eos>", " "] + [chr(code) for code in range(ord("a"), ord("z") + 1)]
CHAR_IDS: dict[str, int] = {char: index for index, char in enumerate(CHARS)}

DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_DIGIT = re.compile(r"[0-9]")
_NOT_LETTER = re.compile(r"[^a-z]+")


def normalise(text: str) -> str:
    """Return text in text8's alphabet, starting with one space.

    Text with no letters at all normalises to the empty string. A trailing
    space is kept: it asks the model for the next word.
    """
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(char for char in folded if not unicodedata.combining(char)).lower()
    folded = _DIGIT.sub(lambda match: f" {DIGIT_NAMES[int(match.group())]} ", folded)
    collapsed = _NOT_LETTER.sub(" ", folded)
    words = collapsed.split()
    if not words:
        return ""
    trailing = " " if collapsed.endswith(" ") else ""
    return " " + " ".join(words) + trailing


def encode(text: str) -> list[int]:
    """Character ids of already normalised text."""
    return [CHAR_IDS[char] for char in text]
