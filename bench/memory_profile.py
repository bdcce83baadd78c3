"""How long the memory profile of `python -m training evaluate` takes, per shipped model.

The profile is full-matrix connectivity (the paper's gradient²) for every real-word
position of a seeded sample of test sequences, at least 20,000 positions, plus the
example sentence. Needs a prepared dataset (`python -m training prepare ...`).

    python bench/memory_profile.py [--data data/wiki100m] [--positions 20000] [--threads N]
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.checkpoint import load_checkpoint
from models.units import PAPER_UNITS
from training.dataset import Dataset
from training.evaluate import MEMORY_POSITIONS, memory_profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/wiki100m"))
    parser.add_argument("--checkpoints", type=Path, default=Path("models/checkpoints"))
    parser.add_argument("--positions", type=int, default=MEMORY_POSITIONS)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = Dataset.open(args.data)
    chars, targets = dataset.split("test")
    print(f"memory profile over >= {args.positions:,} test positions, {args.threads} threads, torch {torch.__version__}")
    print(f"{'unit':<6} {'sequences':>9} {'positions':>9} {'seconds':>8} {'positions/s':>11} {'reach-10':>9} {'before word':>11}")
    for unit in PAPER_UNITS:
        path = args.checkpoints / f"{unit}.safetensors"
        if not path.is_file():
            continue
        net = load_checkpoint(path)
        began = time.perf_counter()
        profile = memory_profile(net, chars, targets, dataset.vocabulary, args.positions)
        seconds = time.perf_counter() - began
        test = profile["test"]
        print(f"{unit:<6} {test['sample']['sequences']:>9,} {test['rows']:>9,} {seconds:>8.1f} {test['rows'] / seconds:>11,.0f} "
              f"{test['reach_10']:>9.2%} {test['before_word']:>11.2%}", flush=True)


if __name__ == "__main__":
    main()
