"""Same quality per character? The exact step and the sampled step from one seed and data order, side by side.

Trains the bundled preset's `--unit` twice over the first `--chars` training characters,
once with the exact softmax and once with `--sampled-words K`, and prints both
validation curves (full softmax, the same validation sequences) and the final gap.
The issue's floor: the sampled run ends within +0.03 nats of the exact one.
The exact run takes over an hour of this CPU; `--exact-log` reuses the log.csv
of an earlier one with the same unit, characters and validation spacing.

    python bench/sampled_quality.py --data data/wiki100m [--unit gru] [--chars 5000000] [--sampled 2048]
                                    [--exact-log runs/exact/log.csv]
"""

import argparse
import csv
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.net import get_preset
from training.train import LOG_FILE, TrainOptions, train


def validation_curve(log: Path) -> list[tuple[int, float]]:
    with open(log, newline="") as file:
        return [(int(row["characters"]), float(row["valid_loss"])) for row in csv.DictReader(file)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--unit", default="gru")
    parser.add_argument("--chars", type=int, default=5_000_000)
    parser.add_argument("--sampled", type=int, default=2048)
    parser.add_argument("--eval-every", type=int, default=40, help="mini-batches between validation points")
    parser.add_argument("--exact-log", type=Path, help="log.csv of an earlier exact run to compare with, instead of training one")
    args = parser.parse_args()
    curves = {}
    if args.exact_log is not None:
        curves["exact"] = validation_curve(args.exact_log)
    with tempfile.TemporaryDirectory() as folder:
        for name, sampled in (("exact", 0), (f"sampled K={args.sampled}", args.sampled)):
            if name in curves:
                continue
            run = Path(folder) / name.replace(" ", "-")
            train(TrainOptions(unit=args.unit, preset=get_preset("bundled"), data=args.data, out=run, max_chars=args.chars,
                               eval_every=args.eval_every, sampled_words=sampled, warm_start=None))
            curves[name] = validation_curve(run / LOG_FILE)
    (exact_name, exact), (sampled_name, sampled) = curves.items()
    if [characters for characters, _ in exact] != [characters for characters, _ in sampled]:
        sys.exit(f"the exact curve's validation points {[c for c, _ in exact]} are not the sampled run's {[c for c, _ in sampled]}")
    print(f"{'characters':>12} {exact_name:>12} {sampled_name:>18} {'gap':>8}")
    for (characters, exact_loss), (_, sampled_loss) in zip(exact, sampled):
        print(f"{characters:>12,} {exact_loss:>12.4f} {sampled_loss:>18.4f} {sampled_loss - exact_loss:>+8.4f}")
    gap = sampled[-1][1] - exact[-1][1]
    print(f"final validation loss: exact {exact[-1][1]:.4f}, sampled {sampled[-1][1]:.4f}, gap {gap:+.4f} nats "
          f"({'within' if gap <= 0.03 else 'outside'} the +0.03 floor)")


if __name__ == "__main__":
    main()
