"""bench/copy_memory.py's cases: a repeated word, its first occurrence swapped, positions kept."""

import numpy as np

from bench.copy_memory import find_cases
from models.text import encode
from models.vocab import SPECIAL_WORDS, Vocabulary

VOCABULARY = Vocabulary(SPECIAL_WORDS + ["the", "grammar", "biology", "history", "study", "rules", "of"])


def rows(*texts: str) -> np.ndarray:
    chars = np.zeros((len(texts), 200), dtype=np.uint8)
    for row, text in enumerate(texts):
        chars[row, : len(text)] = encode(text)
    return chars


def test_a_repeat_far_enough_back_is_swapped_for_a_word_of_its_length():
    text = " the study of grammar is old the rules of grammar"
    [case] = find_cases(rows(text), VOCABULARY, gap=10, count=5, seed=0)
    assert case.text == text and len(case.swapped) == len(text)
    first = text.index("grammar")
    assert case.swapped[first : first + 7] in {"biology", "history"}
    assert case.swapped[:first] == text[:first] and case.swapped[first + 7 :] == text[first + 7 :]
    assert case.space == text.rindex(" grammar") and text[case.space + 1] == "g"
    assert case.word == VOCABULARY.id("grammar")


def test_repeats_too_close_short_or_out_of_the_vocabulary_are_not_cases():
    texts = (
        " the grammar grammar",  # 1 character apart
        " the rules of the rules of",  # "the" and "of" are short; "rules" is too close for gap 20
        " the zebras of zebras the zebras",  # not in the vocabulary
    )
    assert find_cases(rows(*texts), VOCABULARY, gap=20, count=5, seed=0) == []
    assert len(find_cases(rows(*texts), VOCABULARY, gap=1, count=5, seed=0)) == 2
