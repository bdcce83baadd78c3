"""Copy memory: does a word seen earlier in a sequence make the model predict it when it comes again?

Connectivity says where a model's gradient reaches; this says whether what it reaches is used.
For test sequences that hold a word (5 letters or more, in the vocabulary) twice, the first time
ending at least `--gap` characters before the second, the first occurrence is swapped for another
vocabulary word of the same length (the sequence keeps its length and positions). The figures are
the model's gain in log-probability of the word, and its share in the top 3, at the second
occurrence's space and first letter, with the first occurrence against without it.

The paper's GRU puts "grammar" first at the "g" of the example sentence's second "grammar"
(13.3 %), 130 characters after the first: that is copy memory at work.

    python bench/copy_memory.py models/checkpoints/gru.safetensors runs/bundled/lstm/state.pt [--gap 5 25 60]
"""

import argparse
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.checkpoint import load_checkpoint
from models.net import AutocompleteNet
from models.text import CHARS, encode
from models.vocab import UNKNOWN, Vocabulary
from training.dataset import Dataset
from training.evaluate import PAPER_FILE, example_text
from training.train import weights_from_state

MIN_LETTERS = 5
BATCH = 32


@dataclass(frozen=True)
class Case:
    text: str  # the sequence as it is
    swapped: str  # the same, its first occurrence of the word replaced
    space: int  # the position of the space before the second occurrence
    word: int  # the word's id


def find_cases(chars: np.ndarray, vocabulary: Vocabulary, gap: int, count: int, seed: int) -> list[Case]:
    """The first repeat of each test sequence at least `gap` characters after its first occurrence, up to `count` sequences."""
    rng = random.Random(seed)
    by_length: dict[int, list[str]] = {}
    for word in vocabulary.words[2:]:
        by_length.setdefault(len(word), []).append(word)
    cases = []
    for row in chars:
        text = "".join(CHARS[char] for char in row if char)
        first_start: dict[str, int] = {}
        start = 0
        for word in text.split(" "):
            earlier = first_start.get(word)
            if earlier is not None and start - (earlier + len(word)) >= gap and len(by_length[len(word)]) > 1:
                other = rng.choice([candidate for candidate in by_length[len(word)] if candidate != word])
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
            scores.append(net.logits(features[row, [case.space, case.space + 1]]).log_softmax(-1))
    return torch.stack(scores).numpy()


def word_scores(net: AutocompleteNet, texts: list[str], cases: list[Case]) -> tuple[np.ndarray, np.ndarray]:
    """Each case's log p(word), and whether the word is in the top 3, at its space and first letter ([cases, 2] each)."""
    scores = log_probabilities(net, texts, cases)
    words = np.array([case.word for case in cases])
    own = np.take_along_axis(scores, words[:, None, None].repeat(2, axis=1), axis=2)
    return own[..., 0], (scores > own).sum(axis=2) < 3


def example_case(vocabulary: Vocabulary) -> Case:
    """The example sentence at the "g" of its second "grammar" (counted as its space), the first one swapped for "biology"."""
    text = example_text()
    letter = json.loads(PAPER_FILE.read_text())["connectivity"]["walkthrough_indices"]["2"]
    return Case(text, text.replace("grammar", "biology", 1), letter - 1, vocabulary.id("grammar"))


def load_net(path: Path) -> tuple[AutocompleteNet, str]:
    """A shipped checkpoint, or a training run's current weights (state.pt), and what it has seen."""
    if path.suffix == ".pt":
        net, progress = weights_from_state(path)
        return net.eval(), f"{progress.characters / 1e6:.1f} M characters"
    return load_checkpoint(path).eval(), "checkpoint"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+", help="checkpoints (.safetensors) or training states (state.pt)")
    parser.add_argument("--data", type=Path, default=Path("data/wiki100m"))
    parser.add_argument("--gap", type=int, nargs="+", default=[5, 25, 60], help="least characters between the two occurrences")
    parser.add_argument("--cases", type=int, default=600, help="repeats per gap (one per test sequence)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = Dataset.open(args.data)
    chars, _ = dataset.split("test")
    nets = []
    for path in args.models:
        net, seen = load_net(path)
        nets.append((f"{path} ({seen})", net))
    width = max(len(label) for label, _ in nets)
    print("gain: mean log p(word) with the first occurrence minus without it, in nats; top-3: share of cases, with / without")
    print(f"{'model':<{width}} {'gap':>4} {'cases':>5} {'gain at space':>13} {'gain at letter 1':>16} {'top-3 at space':>15} {'top-3 at letter 1':>17}")
    for gap in args.gap:
        cases = find_cases(chars, dataset.vocabulary, gap, args.cases, args.seed)
        for label, net in nets:
            with_first, top_with = word_scores(net, [case.text for case in cases], cases)
            without, top_without = word_scores(net, [case.swapped for case in cases], cases)
            gain = (with_first - without).mean(axis=0)
            shares = [f"{top_with[:, k].mean():.1%} / {top_without[:, k].mean():.1%}" for k in (0, 1)]
            print(f"{label:<{width}} {gap:>4} {len(cases):>5} {gain[0]:>13.3f} {gain[1]:>16.3f} {shares[0]:>15} {shares[1]:>17}")
    example = example_case(dataset.vocabulary)
    print('\nthe example sentence, at the "g" of the second "grammar": p(grammar), with the first "grammar" / with "biology" there')
    for label, net in nets:
        with_first, without = (np.exp(log_probabilities(net, [text], [example])[0, 1, example.word]) for text in (example.text, example.swapped))
        print(f"{label:<{width}} {with_first:.2%} / {without:.2%}")


if __name__ == "__main__":
    main()
