"""Copy memory: does a model use a word seen earlier in the sequence when the word comes again?

The method (training/intervention.py, which every `python -m training evaluate` also runs): for test
sequences that hold a word twice, the first occurrence is swapped for another vocabulary word of the
same length, and the model's log-probability of the word at the second occurrence is compared with
and without it, by gap between the two. This prints the same table for any checkpoints or training
states, for instance to follow a run as it trains.

    python bench/copy_memory.py models/checkpoints/gru.safetensors runs/bundled/lstm/state.pt [--cases 600]
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.checkpoint import load_checkpoint
from models.net import AutocompleteNet
from training.dataset import Dataset
from training.evaluate import example_letter, example_text
from training.intervention import CASES_PER_BUCKET, example_case, intervention
from training.train import weights_from_state


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
    parser.add_argument("--cases", type=int, default=CASES_PER_BUCKET, help="cases per gap bucket (one per test sequence)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = Dataset.open(args.data)
    chars, _ = dataset.split("test")
    example = example_case(example_text(), example_letter("2"), dataset.vocabulary)
    results = []
    for path in args.models:
        net, seen = load_net(path)
        results.append((f"{path} ({seen})", intervention(net, chars, dataset.vocabulary, example, args.cases, args.seed)))
    width = max(len(label) for label, _ in results)
    print("gain: mean log p(word) with the first occurrence minus without it, in nats, with its 95 % bootstrap interval; "
          "top-3: share of cases, with / without")
    print(f"{'model':<{width}} {'gap':>6} {'cases':>5} {'gain at space':>24} {'gain at letter 1':>24} {'top-3 at space':>15} {'top-3 at letter 1':>17}")
    for label, result in results:
        for bucket in result["buckets"]:
            gains = [f"{bucket[f'gain_{place}']:.3f} [{bucket[f'gain_{place}_ci95'][0]:.3f}, {bucket[f'gain_{place}_ci95'][1]:.3f}]"
                     for place in ("space", "first_letter")]
            shares = [f"{bucket[f'top3_{place}_with']:.1%} / {bucket[f'top3_{place}_without']:.1%}" for place in ("space", "first_letter")]
            print(f"{label:<{width}} {bucket['label']:>6} {bucket['cases']:>5} {gains[0]:>24} {gains[1]:>24} {shares[0]:>15} {shares[1]:>17}")
    print('\nthe example sentence, at the "g" of the second "grammar": p(grammar), with the first "grammar" / with "biology" there')
    for label, result in results:
        case = result["example"]
        print(f"{label:<{width}} {case['probability_with']:.2%} / {case['probability_without']:.2%} (gain {case['gain']:.3f} nats)")


if __name__ == "__main__":
    main()
