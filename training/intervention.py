"""Copy memory, an intervention: does a word seen earlier in a sequence make the model predict it when it comes again?

Connectivity says where a model's gradient reaches; this says whether what it reaches is used.
For test sequences that hold a word (5 letters or more, in the vocabulary) twice, the first
occurrence ending `low`..`high` characters before the second, the first occurrence is swapped for
another vocabulary word of the same length (the sequence keeps its length and positions). The
figures are the model's gain in log-probability of the word, and its share in the top 3, at the
second occurrence's space and first letter, with the first occurrence against without it.

The paper's GRU puts "grammar" first at the "g" of the example sentence's second "grammar"
(13.3 %), 130 characters after the first: that is copy memory at work.
"""

import random
from dataclasses import dataclass

import numpy as np
import torch

from models.net import AutocompleteNet
from models.text import CHARS, encode
from models.vocab import UNKNOWN, Vocabulary
from training.bootstrap import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, interval

MIN_LETTERS = 5
BATCH = 32
# Distance from the end of the first occurrence to the space before the second, in characters (None: no upper end).
GAP_BUCKETS: tuple[tuple[int, int | None], ...] = ((5, 24), (25, 59), (60, None))
CASES_PER_BUCKET = 600
INTERVENTION_SEED = 0
EXAMPLE_WORD, EXAMPLE_REPLACEMENT = "grammar", "biology"


@dataclass(frozen=True)
class Case:
    text: str  # the sequence as it is
    swapped: str  # the same, its first occurrence of the word replaced
    space: int  # the position of the space before the second occurrence
    word: int  # the word's id


def gap_label(low: int, high: int | None) -> str:
    return f"{low}+" if high is None else f"{low}–{high}"


def find_cases(chars: np.ndarray, vocabulary: Vocabulary, gap: int, count: int, seed: int,
               max_gap: int | None = None) -> list[Case]:
    """Up to `count` cases, one per test sequence in the order given: its first repeat whose gap lies in `gap`..`max_gap`."""
    rng = random.Random(seed)
    cases = []
    for row in chars:
        text = "".join(CHARS[char] for char in row if char)
        first_start: dict[str, int] = {}
        start = 0
        for word in text.split(" "):
            earlier = first_start.get(word)
            if earlier is not None and len(vocabulary.words_of_length(len(word))) > 1:
                distance = start - (earlier + len(word))
                if distance >= gap and (max_gap is None or distance <= max_gap):
                    other = rng.choice([candidate for candidate in vocabulary.words_of_length(len(word)) if candidate != word])
                    swapped = text[:earlier] + other + text[earlier + len(word) :]
                    cases.append(Case(text, swapped, start - 1, vocabulary.id(word)))
                    break
            if len(word) >= MIN_LETTERS and vocabulary.id(word) > UNKNOWN:
                first_start.setdefault(word, start)
            start += len(word) + 1
        if len(cases) == count:
            break
    return cases


@torch.no_grad()
def log_probabilities(net: AutocompleteNet, texts: list[str], cases: list[Case]) -> np.ndarray:
    """[cases, 2, words]: the log-probabilities at each case's space and first letter, reading `texts`."""
    scores = []
    for start in range(0, len(texts), BATCH):
        batch = texts[start : start + BATCH]
        chars = torch.zeros(len(batch), max(map(len, batch)), dtype=torch.long)
        for row, text in enumerate(batch):
            chars[row, : len(text)] = torch.tensor(encode(text))
        features = net.features(chars)[0]
        for row, case in enumerate(cases[start : start + BATCH]):
            scores.append(net.logits(features[row, [case.space, case.space + 1]]).float().log_softmax(-1))
    return torch.stack(scores).numpy()


def word_scores(net: AutocompleteNet, texts: list[str], cases: list[Case]) -> tuple[np.ndarray, np.ndarray]:
    """Each case's log p(word), and whether the word is in the top 3, at its space and first letter ([cases, 2] each)."""
    scores = log_probabilities(net, texts, cases)
    words = np.array([case.word for case in cases])
    own = np.take_along_axis(scores, words[:, None, None].repeat(2, axis=1), axis=2)
    return own[..., 0], (scores > own).sum(axis=2) < 3


def example_case(text: str, letter: int, vocabulary: Vocabulary) -> Case:
    """`text` at `letter`, the first letter of the second "grammar" (counted at its space), the first one swapped for "biology"."""
    return Case(text, text.replace(EXAMPLE_WORD, EXAMPLE_REPLACEMENT, 1), letter - 1, vocabulary.id(EXAMPLE_WORD))


def bucket_result(net: AutocompleteNet, cases: list[Case], resamples: int, seed: int) -> dict:
    """Mean gains (nats) and top-3 shares with and without the first occurrence, with 95 % intervals over cases (None without cases)."""
    if not cases:
        return {"cases": 0} | {f"{figure}_{place}{suffix}": None for place in ("space", "first_letter")
                                for figure, suffix in (("gain", ""), ("gain", "_ci95"), ("top3", "_with"), ("top3", "_without"))}
    with_first, top_with = word_scores(net, [case.text for case in cases], cases)
    without, top_without = word_scores(net, [case.swapped for case in cases], cases)
    gain = with_first - without
    result: dict = {"cases": len(cases)}
    for column, place in enumerate(("space", "first_letter")):
        result[f"gain_{place}"] = float(gain[:, column].mean())
        result[f"gain_{place}_ci95"] = interval(gain[:, column], np.ones(len(cases)), resamples, seed)
        result[f"top3_{place}_with"] = float(top_with[:, column].mean())
        result[f"top3_{place}_without"] = float(top_without[:, column].mean())
    return result


def intervention(net: AutocompleteNet, chars: np.ndarray, vocabulary: Vocabulary, example: Case,
                 cases_per_bucket: int = CASES_PER_BUCKET, seed: int = INTERVENTION_SEED,
                 resamples: int = BOOTSTRAP_RESAMPLES) -> dict:
    """The copy test on a seeded order of the test sequences `chars`, one result per gap bucket, and the example's case."""
    net = net.eval()
    order = chars[np.random.default_rng(seed).permutation(len(chars))]
    buckets = []
    for low, high in GAP_BUCKETS:
        cases = find_cases(order, vocabulary, low, cases_per_bucket, seed, max_gap=high)
        buckets.append({"low": low, "high": high, "label": gap_label(low, high), **bucket_result(net, cases, resamples, BOOTSTRAP_SEED)})
    with_first, without = (float(np.exp(log_probabilities(net, [text], [example])[0, 1, example.word]))
                           for text in (example.text, example.swapped))
    return {
        "method": "first occurrence of a repeated word swapped for another vocabulary word of the same length",
        "sample": {"split": "test", "seed": seed, "cases_per_bucket": cases_per_bucket, "sequences": len(chars)},
        "buckets": buckets,
        "example": {
            "word": EXAMPLE_WORD, "replacement": EXAMPLE_REPLACEMENT, "position": example.space + 1,
            "probability_with": with_first, "probability_without": without, "gain": float(np.log(with_first / without)),
        },
    }
