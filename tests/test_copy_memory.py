"""The copy test's cases (training/intervention.py): a repeated word, its first occurrence swapped, positions kept."""

import numpy as np
import torch

from models.net import AutocompleteNet, ModelConfig
from models.text import encode
from models.vocab import SPECIAL_WORDS, Vocabulary
from training.intervention import GAP_BUCKETS, Case, find_cases, intervention

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


def test_a_gap_bucket_takes_only_repeats_within_its_range():
    text = " the study of grammar is old the rules of grammar"  # 20 characters between the two
    assert len(find_cases(rows(text), VOCABULARY, gap=5, count=5, seed=0, max_gap=24)) == 1
    assert find_cases(rows(text), VOCABULARY, gap=25, count=5, seed=0, max_gap=59) == []
    assert find_cases(rows(text), VOCABULARY, gap=5, count=5, seed=0, max_gap=19) == []


def test_intervention_reports_every_bucket_with_intervals_and_the_example():
    torch.manual_seed(0)
    net = AutocompleteNet(ModelConfig(unit="gru", hidden_size=8, num_layers=1, num_words=len(VOCABULARY)))
    texts = [" the study of grammar is old the rules of grammar", " the rules of history and the study of " + "of " * 8 + "history"]
    text = " the grammar of the rules of grammar"
    example = Case(text, text.replace("grammar", "biology", 1), text.rindex(" grammar"), VOCABULARY.id("grammar"))
    result = intervention(net, rows(*texts), VOCABULARY, example, cases_per_bucket=5, resamples=50)
    assert [bucket["label"] for bucket in result["buckets"]] == ["5–24", "25–59", "60+"] and len(GAP_BUCKETS) == 3
    near, middle, far = result["buckets"]
    assert near["cases"] == 1 and middle["cases"] == 1 and far["cases"] == 0
    low, high = near["gain_space_ci95"]
    assert low <= near["gain_space"] <= high
    assert 0 <= near["top3_space_with"] <= 1
    assert result["example"]["position"] == example.space + 1
    assert np.isclose(result["example"]["gain"], np.log(result["example"]["probability_with"] / result["example"]["probability_without"]))
