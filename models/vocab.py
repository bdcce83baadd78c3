"""The output vocabulary: `<eos>`, `<unknown>`, then the most frequent words."""

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from models.text import CHARS

EOS = 0
UNKNOWN = 1
SPECIAL_WORDS = ["<eos>", "<unknown>"]


@dataclass(frozen=True)
class Vocabulary:
    """Word ids in id order; ids 0 and 1 are the special words masked from the loss."""

    words: list[str]
    ids: dict[str, int] = field(init=False, repr=False, compare=False)
    by_length: dict[int, list[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", {word: index for index, word in enumerate(self.words)})
        by_length: dict[int, list[str]] = {}
        for word in self.words[len(SPECIAL_WORDS) :]:
            by_length.setdefault(len(word), []).append(word)
        object.__setattr__(self, "by_length", by_length)

    def __len__(self) -> int:
        return len(self.words)

    def id(self, word: str) -> int:
        """Id of a word, `UNKNOWN` for a word outside the vocabulary."""
        return self.ids.get(word, UNKNOWN)

    def words_of_length(self, length: int) -> list[str]:
        """The real words of `length` letters, in id order: what a word is swapped for in the copy test and a counterfactual."""
        return self.by_length.get(length, [])

    @classmethod
    def from_counts(cls, counts: Counter[str], size: int) -> "Vocabulary":
        """The `size` most frequent words; ties broken alphabetically so builds repeat."""
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls(SPECIAL_WORDS + [word for word, _ in ranked[:size]])

    def save(self, path: Path) -> None:
        """Write `{"chars": [...], "words": [...]}` in id order."""
        path.write_text(json.dumps({"chars": CHARS, "words": self.words}))

    @classmethod
    def load(cls, path: Path) -> "Vocabulary":
        """Read a vocab.json, checking that its character set is ours."""
        data = json.loads(path.read_text())
        if data.get("chars") != CHARS:
            raise ValueError(f"{path}: 'chars' must be the 28 symbols {CHARS}")
        words = data.get("words")
        if not isinstance(words, list) or words[:2] != SPECIAL_WORDS:
            raise ValueError(f"{path}: 'words' must be a list starting with {SPECIAL_WORDS}")
        return cls(words)
