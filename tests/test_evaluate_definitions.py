"""Accuracy on the paper's definition and ours, and the bootstrap intervals beside them.

The paper's code counts accuracy over every character (`tf.metrics.accuracy(labels=target,
predictions=argmax)` and `ContextAccuracy` in python/summary/context_accuracy.py of
distillpub/post--memorization-in-rnns): a position whose word is `<unknown>` is in the count. The
reference below is that counting rule written out for one sequence; `evaluate` must agree with it.
"""

import numpy as np
import torch
from torch import nn

from models.text import encode
from models.vocab import UNKNOWN
from training.bootstrap import interval
from training.evaluate import evaluate

TEXT = " the cat saw a zyzzyva then the cat"
WORDS = {"the": 2, "cat": 3, "saw": 4, "a": 5, "then": 6, "zyzzyva": UNKNOWN}
VOCABULARY_SIZE = 7


def aligned(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Char ids and each character's target word id: the word it belongs to, the space before it included."""
    words = text.split(" ")[1:]
    return np.array(encode(text)), np.repeat([WORDS[word] for word in words], [len(word) + 1 for word in words])


class FixedGuesses(nn.Module):
    """A stand-in model whose scores at each (sequence, position) are given: `features` returns them, `logits` keeps them."""

    def __init__(self, scores: torch.Tensor) -> None:
        super().__init__()
        self.scores = scores

    def features(self, chars: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.scores[: len(chars), : chars.shape[1]], None

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return features


def context_accuracy(sources: list[str], ranked: list[np.ndarray], targets: list[np.ndarray], top: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The paper's counting: per letters consumed (0 at a space), hits of the k best guesses and positions, every character."""
    hits, totals = np.zeros((top, 30)), np.zeros(30)
    for source, guesses, target in zip(sources, ranked, targets):
        consumed = 0
        for char, guess, word in zip(source, guesses, target):
            consumed = 0 if char == " " else consumed + 1
            totals[consumed] += 1
            for k in range(top):
                if guess[k] == word:
                    hits[k:, consumed] += 1
    return hits, totals


def test_every_character_accuracy_counts_as_the_papers_code_and_ours_counts_real_words():
    chars, targets = aligned(TEXT)
    rng = np.random.default_rng(3)
    scores = torch.tensor(rng.normal(size=(1, len(chars), VOCABULARY_SIZE)), dtype=torch.float32)
    scores[0, :4, 2] = 10.0  # " the": right at once
    scores[0, 14:22, UNKNOWN] = -10.0  # " zyzzyva": <unknown> never guessed, as a model trained with it masked
    padded_chars, padded_targets = np.zeros((1, 200), np.uint8), np.zeros((1, 200), np.int64)
    padded_chars[0, : len(chars)], padded_targets[0, : len(chars)] = chars, targets
    result = evaluate(FixedGuesses(scores), padded_chars, padded_targets, resamples=20)

    ranked = np.argsort(-scores[0].numpy(), axis=1)
    hits, totals = context_accuracy([TEXT], [ranked], [targets])
    every = result["accuracy_by_letters_known"]["every_character"]
    assert every["count"][:8] == totals[:8].astype(int).tolist() and sum(every["count"]) == len(TEXT)
    for k in range(3):
        expected = [h / n if n else None for h, n in zip(hits[k][:22], totals[:22])]
        assert every[f"top{k + 1}"][:8] == expected[:8]
    argmax_hits = (ranked[:, 0] == targets).sum()
    assert np.isclose(result["test"]["accuracy_every_character"], argmax_hits / len(TEXT))
    assert result["test"]["characters"] == len(TEXT)

    real = targets > UNKNOWN
    assert result["test"]["positions"] == real.sum() == len(TEXT) - len(" zyzzyva")
    assert np.isclose(result["test"]["accuracy"], (ranked[real, 0] == targets[real]).sum() / real.sum())
    # the unknown word's positions are misses on the paper's definition and left out of ours
    assert result["test"]["accuracy_every_character"] < result["test"]["accuracy"]
    assert result["test"]["unknown_first"] == 0


def test_intervals_hold_the_estimate_and_narrow_with_more_sequences():
    rng = np.random.default_rng(0)
    hits = rng.binomial(200, 0.5, size=4000).astype(float)
    positions = np.full(4000, 200.0)
    wide, narrow = interval(hits[:40], positions[:40]), interval(hits, positions)
    for low, high in (wide, narrow):
        assert low < 0.5 < high
    assert narrow[1] - narrow[0] < (wide[1] - wide[0]) / 5
    assert interval(hits, positions) == narrow  # seeded: the same interval every time


def test_intervals_of_several_columns_come_one_per_column():
    numerators = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    columns = interval(numerators, np.ones(3), resamples=200)
    assert len(columns) == 2 and all(0.0 <= low <= high <= 1.0 for low, high in columns)
