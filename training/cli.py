"""`python -m training prepare|train|evaluate|export|describe`: one-line errors, non-zero exits."""

import argparse
import sys
from pathlib import Path

from models.checkpoint import CheckpointError
from models.net import PRESETS, get_preset
from models.units import UNITS
from training.corpus import TEXT8_URL, CorpusError

DATA_ROOT = Path("data")
RUNS_ROOT = Path("runs")


def corpus_name(corpus: str) -> str:
    """`text8`, or the file name without its extensions (`wiki100m.txt.xz` -> `wiki100m`)."""
    return "text8" if corpus == "text8" else Path(corpus).name.split(".")[0]


def default_dataset() -> Path:
    """The one prepared dataset under data/, so `--data` can be left out in the common case."""
    prepared = sorted(path.parent for path in DATA_ROOT.glob("*/info.json"))
    if len(prepared) == 1:
        return prepared[0]
    if not prepared:
        raise FileNotFoundError("no prepared dataset under data/; run `python -m training prepare --corpus ...` first")
    raise ValueError(f"several datasets under data/ ({', '.join(map(str, prepared))}); pick one with --data")


def command_prepare(args: argparse.Namespace) -> None:
    import time

    from training.corpus import download_text8, read_corpus, sha256_of
    from training.dataset import is_prepared, prepare_dataset

    began = time.time()
    name = corpus_name(args.corpus)
    out = args.out or DATA_ROOT / name
    path = download_text8(DATA_ROOT / "download", url=args.url) if args.corpus == "text8" else Path(args.corpus)
    if not path.is_file():
        raise CorpusError(f"corpus file {path} does not exist")
    digest = sha256_of(path)
    if is_prepared(out, digest, args.vocabulary_size):
        print(f"{out} is already prepared from {path} (sha256 {digest[:12]}…); nothing to do")
        return
    info = prepare_dataset(read_corpus(path), out, {"name": name, "sha256": digest}, args.vocabulary_size)
    sizes = ", ".join(f"{split} {count:,}" for split, count in info["sequences"].items())
    print(f"prepared {out}: sequences {sizes}; {info['words']:,} words, {info['words_in_vocabulary']:.1%} in the vocabulary")
    print(f"took {time.time() - began:.0f} s")


def command_train(args: argparse.Namespace) -> None:
    from training.train import TrainOptions, train

    preset = get_preset(args.preset)
    data = args.data or default_dataset()
    out = args.out or RUNS_ROOT / preset.name / args.unit
    train(TrainOptions(
        unit=args.unit, preset=preset, data=data, out=out, bf16=not args.no_bf16, resume=args.resume,
        max_minutes=args.max_minutes, max_chars=args.max_chars, epochs=args.epochs, max_steps=args.max_steps,
        hidden_size=args.hidden_size, eval_every=args.eval_every, eval_sequences=args.eval_sequences,
        save_minutes=args.save_minutes, compile=args.compile, device=args.device, seed=args.seed,
    ))


def command_evaluate(args: argparse.Namespace) -> None:
    from training.evaluate import evaluate_run

    data = args.data or default_dataset()
    for unit in args.units:
        run = (args.runs or RUNS_ROOT / args.preset) / unit
        result = evaluate_run(run, data, max_sequences=args.max_sequences, device=args.device)
        print(f"{unit}: test cross-entropy {result['test']['cross_entropy']:.3f}, top-1 accuracy {result['test']['accuracy']:.1%}")


def command_export(args: argparse.Namespace) -> None:
    from training.export import export_runs

    data = args.data or default_dataset()
    written = export_runs(args.runs or RUNS_ROOT / args.preset, data, args.out, args.units, args.preset)
    for path in written:
        print(f"wrote {path}")


def command_reference(args: argparse.Namespace) -> None:
    from training.reference import write_paper_reference

    for path in write_paper_reference(args.paper_data, args.out):
        print(f"wrote {path}")


def command_describe(args: argparse.Namespace) -> None:
    from training.describe import describe

    print(describe(get_preset(args.preset)))


class OneLineErrorParser(argparse.ArgumentParser):
    """Bad arguments get one line naming the problem, not the whole usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    prepare = commands.add_parser("prepare", help="download or read a corpus and build the aligned dataset")
    prepare.add_argument("--corpus", required=True, help="'text8' to download it, or a .txt/.xz/.zip file of text8-shaped text")
    prepare.add_argument("--out", type=Path, help="dataset directory (default data/<corpus name>)")
    prepare.add_argument("--vocabulary-size", type=int, default=2**14, help="number of most frequent words (default 2^14)")
    prepare.add_argument("--url", default=TEXT8_URL, help=argparse.SUPPRESS)
    prepare.set_defaults(run=command_prepare)

    train = commands.add_parser("train", help="train one unit; resumable")
    train.add_argument("--unit", required=True, choices=UNITS)
    train.add_argument("--preset", required=True, choices=list(PRESETS))
    train.add_argument("--data", type=Path, help="prepared dataset directory (default: the one under data/)")
    train.add_argument("--out", type=Path, help="run directory (default runs/<preset>/<unit>)")
    train.add_argument("--resume", action="store_true", help="continue from the run directory's saved state")
    train.add_argument("--no-bf16", action="store_true", help="train in float32 instead of bf16 autocast")
    train.add_argument("--compile", action="store_true", help="torch.compile the Nested LSTM step")
    train.add_argument("--max-minutes", type=float, help="stop cleanly (resumable) after this much wall-clock time")
    train.add_argument("--max-chars", type=int, help="override the preset's number of training characters")
    train.add_argument("--max-steps", type=int, help="stop after this many mini-batches in all")
    train.add_argument("--epochs", type=float, help="override the preset's number of passes over the training split")
    train.add_argument("--hidden-size", type=int, help="override the preset's hidden size (experiments, tests)")
    train.add_argument("--eval-every", type=int, default=200, help="mini-batches between validation rows of the log")
    train.add_argument("--eval-sequences", type=int, default=256, help="validation sequences per log row")
    train.add_argument("--save-minutes", type=float, default=5.0, help="minutes between resumable saves")
    train.add_argument("--device", default="cuda" if _cuda_available() else "cpu")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(run=command_train)

    for name, helptext, run in (
        ("evaluate", "test cross-entropy, accuracy and accuracy by letters known (writes JSON)", command_evaluate),
        ("export", "write models/checkpoints/: safetensors, vocab.json, metrics.json", command_export),
    ):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("--preset", default="bundled", choices=list(PRESETS))
        sub.add_argument("--units", nargs="+", default=list(UNITS), choices=UNITS)
        sub.add_argument("--runs", type=Path, help="directory holding one run directory per unit (default runs/<preset>)")
        sub.add_argument("--data", type=Path, help="prepared dataset directory (default: the one under data/)")
        sub.set_defaults(run=run)
    commands.choices["evaluate"].add_argument("--max-sequences", type=int, help="evaluate on the first N test sequences only")
    commands.choices["evaluate"].add_argument("--device", default="cpu")
    commands.choices["export"].add_argument("--out", type=Path, default=Path("models/checkpoints"))

    reference = commands.add_parser("reference", help="the paper's published connectivity, compact, with its memory profile")
    reference.add_argument("--paper-data", type=Path, default=Path("../shared/reference/paper-data"))
    reference.add_argument("--out", type=Path, default=Path("static/data/paper"))
    reference.set_defaults(run=command_reference)

    describe = commands.add_parser("describe", help="parameter counts per part, beside the paper's")
    describe.add_argument("--preset", required=True, choices=list(PRESETS))
    describe.set_defaults(run=command_describe)
    return parser


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (CorpusError, CheckpointError, FileNotFoundError, ValueError) as error:
        print(f"python -m training {args.command}: error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"python -m training {args.command}: interrupted", file=sys.stderr)
        sys.exit(130)
