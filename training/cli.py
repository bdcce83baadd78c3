"""`python -m training prepare|train|evaluate|export|describe`: one-line errors, non-zero exits."""

import argparse
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

from models.checkpoint import CheckpointError
from models.net import PRESETS, get_preset
from models.units import PAPER_UNITS, unit_names
from training.corpus import TEXT8_URL, CorpusError
from training.train import TrainOptions

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


def units_with_runs(runs: Path) -> list[str]:
    """Every registered unit that has a run directory under `runs`, in registry order."""
    units = [unit for unit in unit_names() if (runs / unit).is_dir()]
    if not units:
        raise FileNotFoundError(f"{runs} holds no run of a registered unit ({', '.join(unit_names())}); train one first")
    return units


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
    from training.train import train

    preset = get_preset(args.preset)
    data = args.data or default_dataset()
    out = args.out or RUNS_ROOT / preset.name / args.unit
    train(TrainOptions(
        unit=args.unit, preset=preset, data=data, out=out, bf16=not args.no_bf16, resume=args.resume,
        max_minutes=args.max_minutes, stop_after_steps=args.stop_after_steps, max_chars=args.max_chars, epochs=args.epochs, max_steps=args.max_steps,
        hidden_size=args.hidden_size, eval_every=args.eval_every, eval_sequences=args.eval_sequences,
        save_minutes=args.save_minutes, compile=args.compile, graph=args.graph, snapshot_chars=args.snapshot_chars,
        sampled_words=args.sampled_words,
        warm_start=None if args.no_warm_start else args.warm_start,
        device=args.device, seed=args.seed,
    ))


def command_evaluate(args: argparse.Namespace) -> None:
    import torch

    from training.evaluate import evaluate_checkpoint, evaluate_run

    if args.threads:
        torch.set_num_threads(args.threads)
    data = args.data or default_dataset()
    evaluations: list[tuple[str, Callable[[], dict]]]
    if args.checkpoint:
        out = args.out or args.checkpoint.with_suffix(".json")
        evaluations = [(args.checkpoint.stem, partial(evaluate_checkpoint, args.checkpoint, data, out, args.max_sequences, args.device, args.memory_positions))]
    else:
        runs_root = args.runs or RUNS_ROOT / args.preset
        evaluations = [
            (unit, partial(evaluate_run, runs_root / unit, data, args.max_sequences, args.device, args.memory_positions))
            for unit in args.units or units_with_runs(runs_root)
        ]
    for name, evaluate in evaluations:
        result = evaluate()
        memory = result["memory"]["test"]
        seen = f" after {result['characters_seen']:,} characters" if result["characters_seen"] is not None else ""
        test = result["test"]
        print(f"{name}{seen}, on {test['sequences']:,} test sequences: cross-entropy {test['cross_entropy']:.3f}, top-1 accuracy "
              f"{test['accuracy_every_character']:.1%} over every character (the paper's definition), {test['accuracy']:.1%} over real "
              f"words; on {memory['rows']:,} positions of {memory['sample']['sequences']:,} of them: share before the current word "
              f"{memory['before_word']:.1%}, reach-10 {memory['reach_10']:.1%}")


def command_campaign(args: argparse.Namespace) -> None:
    from training.campaign import CampaignOptions, run_campaign

    run_campaign(CampaignOptions(
        preset=args.preset, units=tuple(args.units), data=args.data or default_dataset(),
        runs=args.runs or RUNS_ROOT / args.preset, out=args.out, device=args.device, max_minutes=args.max_minutes,
        snapshot_chars=args.snapshot_chars, graph_units=tuple(args.graph_units), memory_positions=args.memory_positions,
        from_scratch=args.from_scratch,
    ))


def command_export(args: argparse.Namespace) -> None:
    from training.export import export_runs, refresh_evaluation

    data = args.data or default_dataset()
    if args.evaluation:
        if len(args.units or []) != 1:
            raise ValueError("--evaluation takes one unit: --units <unit>, the shipped model it is an evaluation of")
        print(f"wrote {refresh_evaluation(args.evaluation, args.units[0], data, args.out)}")
        return
    runs = args.runs or RUNS_ROOT / args.preset
    written = export_runs(runs, data, args.out, args.units or units_with_runs(runs), args.preset, force=args.force)
    for path in written:
        print(f"wrote {path}")


def command_snapshot_rows(args: argparse.Namespace) -> None:
    from models.checkpoint import load_vocabulary
    from training.evaluate import example_text
    from training.snapshot_rows import write_snapshot_rows

    runs = args.runs or RUNS_ROOT / args.preset
    units = args.units or units_with_runs(runs)
    written = write_snapshot_rows(runs, units, args.out, example_text(), load_vocabulary(args.vocabulary))
    if not written:
        raise ValueError(f"the runs of {', '.join(units)} under {runs} have no snapshots or finished model yet")
    for path in written:
        print(f"wrote {path} ({path.stat().st_size / 1000:.1f} kB)")


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
    train.add_argument("--unit", required=True, choices=unit_names())
    train.add_argument("--preset", required=True, choices=list(PRESETS))
    train.add_argument("--data", type=Path, help="prepared dataset directory (default: the one under data/)")
    train.add_argument("--out", type=Path, help="run directory (default runs/<preset>/<unit>)")
    train.add_argument("--resume", action="store_true",
                       help="continue from the run directory's saved state; without one, warm-start from --warm-start's shipped weights")
    train.add_argument("--warm-start", type=Path, default=TrainOptions.warm_start,
                       help="checkpoint folder whose <unit>.safetensors and metrics.json --resume falls back to")
    train.add_argument("--no-warm-start", action="store_true", help="with --resume and no saved state, start from scratch")
    train.add_argument("--no-bf16", action="store_true", help="train in float32 instead of bf16 autocast")
    train.add_argument("--compile", action="store_true", help="torch.compile the Nested LSTM step")
    train.add_argument("--sampled-words", type=int, default=TrainOptions.sampled_words, metavar="K",
                       help="train the output layer on the batch's words, the most frequent words and K power-law draws over the other ranks (0: the exact softmax)")
    train.add_argument("--graph", action="store_true", help="on CUDA, replay the recurrent part as CUDA graphs (full-width batches)")
    train.add_argument("--snapshot-chars", type=character_marks, default=TrainOptions.snapshot_chars,
                       help="comma-separated character counts at which to keep float16 weights, e.g. 20000000,60000000")
    train.add_argument("--max-minutes", type=float, help="stop cleanly (resumable) after this much wall-clock time")
    train.add_argument("--stop-after-steps", type=int, metavar="N",
                       help="stop cleanly (resumable) after N mini-batches of this invocation, as --max-minutes does by the clock; "
                            "unlike --max-steps, the run is not finished")
    train.add_argument("--max-chars", type=int,
                       help="train this many characters instead of the preset's epochs, more or fewer (with --epochs: whichever comes first)")
    train.add_argument("--max-steps", type=int, help="stop after this many mini-batches in all")
    train.add_argument("--epochs", type=float, help="override the preset's number of passes over the training split")
    train.add_argument("--hidden-size", type=int, help="override the preset's hidden size (experiments, tests)")
    train.add_argument("--eval-every", type=int, default=TrainOptions.eval_every, help="mini-batches between validation rows of the log")
    train.add_argument("--eval-sequences", type=int, default=TrainOptions.eval_sequences, help="validation sequences per log row")
    train.add_argument("--save-minutes", type=float, default=TrainOptions.save_minutes, help="minutes between resumable saves")
    train.add_argument("--device", default="cuda" if _cuda_available() else "cpu")
    train.add_argument("--seed", type=int, default=TrainOptions.seed)
    train.set_defaults(run=command_train)

    for name, helptext, run in (
        ("evaluate", "test cross-entropy, accuracy and accuracy by letters known (writes JSON)", command_evaluate),
        ("export", "write models/checkpoints/: safetensors, vocab.json, metrics.json", command_export),
    ):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("--preset", default="bundled", choices=list(PRESETS))
        sub.add_argument("--units", nargs="+", choices=unit_names(),
                         help="units to take from --runs (default: every registered unit that has a run there)")
        sub.add_argument("--runs", type=Path, help="directory holding one run directory per unit (default runs/<preset>)")
        sub.add_argument("--data", type=Path, help="prepared dataset directory (default: the one under data/)")
        sub.set_defaults(run=run)
    commands.choices["evaluate"].add_argument("--max-sequences", type=int, help="evaluate on the first N test sequences only")
    commands.choices["evaluate"].add_argument("--device", default="cpu", help="for the test metrics; the memory profile runs on the CPU")
    commands.choices["evaluate"].add_argument("--checkpoint", type=Path, help="evaluate this checkpoint file instead of runs")
    commands.choices["evaluate"].add_argument("--out", type=Path, help="with --checkpoint: the JSON to write (default beside it)")
    commands.choices["evaluate"].add_argument("--memory-positions", type=int, default=20_000, help="test positions in the memory profile's sample")
    commands.choices["evaluate"].add_argument("--threads", type=int, help="CPU threads (default: PyTorch's)")
    commands.choices["export"].add_argument("--out", type=Path, default=Path("models/checkpoints"),
                                            help="checkpoint folder to write or update, served with RNN_CHECKPOINT_DIR (default models/checkpoints)")
    commands.choices["export"].add_argument("--evaluation", type=Path,
                                            help="instead of runs: put this evaluation of a checkpoint already in --out (`evaluate "
                                                 "--checkpoint ... --out FILE`) into its metrics.json, e.g. after the evaluation changed")
    commands.choices["export"].add_argument("--force", action="store_true",
                                            help="replace a checkpoint in --out that was trained on more characters than the run")

    rows = commands.add_parser("snapshot-rows", help="the example sentence's connectivity at each snapshot of a run (memory forming)")
    rows.add_argument("--preset", default="bundled", choices=list(PRESETS))
    rows.add_argument("--units", nargs="+", choices=unit_names(), help="default: every registered unit that has a run there")
    rows.add_argument("--runs", type=Path, help="directory holding one run directory per unit (default runs/<preset>)")
    rows.add_argument("--vocabulary", type=Path, default=Path("models/checkpoints"), help="folder holding the vocab.json the runs use")
    rows.add_argument("--out", type=Path, default=Path("static/data/snapshots"),
                      help="folder to write <unit>/chars-N.json.gz into (default static/data/snapshots)")
    rows.set_defaults(run=command_snapshot_rows)

    reference = commands.add_parser("reference", help="the paper's published connectivity, compact, with its memory profile")
    reference.add_argument("--paper-data", type=Path, default=Path("../shared/reference/paper-data"),
                           help="a clone of github.com/distillpub/post--memorization-in-rnns, or a folder of its public/data/ "
                                "files with its LICENSE.md (default: ../shared/reference/paper-data)")
    reference.add_argument("--out", type=Path, default=Path("static/data/paper"), help="folder to write (default static/data/paper)")
    reference.set_defaults(run=command_reference)

    campaign = commands.add_parser("campaign", help="train units side by side on one machine, evaluating snapshots as they come")
    campaign.add_argument("--preset", default="bundled", choices=list(PRESETS))
    campaign.add_argument("--units", nargs="+", default=list(PAPER_UNITS), choices=unit_names(),
                          help=f"units to train (default: the paper's {', '.join(PAPER_UNITS)})")
    campaign.add_argument("--data", type=Path)
    campaign.add_argument("--runs", type=Path)
    campaign.add_argument("--out", type=Path, required=True, help="folder for float16 weights and the archive of logs")
    campaign.add_argument("--device", default="cuda" if _cuda_available() else "cpu")
    campaign.add_argument("--max-minutes", type=float, required=True, help="training time of every unit")
    campaign.add_argument("--snapshot-chars", type=character_marks, default=(20_000_000, 60_000_000, 120_000_000))
    campaign.add_argument("--graph-units", nargs="*", default=["nlstm"], choices=unit_names(), help="units replayed as CUDA graphs")
    campaign.add_argument("--from-scratch", action="store_true",
                          help="without saved states in --runs, start from scratch instead of the shipped weights")
    campaign.add_argument("--memory-positions", type=int, default=20_000, help="test positions in each memory profile's sample")
    campaign.set_defaults(run=command_campaign)

    describe = commands.add_parser("describe", help="parameter counts per part of every registered unit, beside the paper's")
    describe.add_argument("--preset", required=True, choices=list(PRESETS))
    describe.set_defaults(run=command_describe)
    return parser


def character_marks(text: str) -> tuple[int, ...]:
    """`20000000,60000000` -> (20000000, 60000000), for argparse."""
    try:
        marks = tuple(sorted(int(part) for part in text.split(",") if part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers of characters, got {text!r}") from None
    if any(mark <= 0 for mark in marks):
        raise argparse.ArgumentTypeError(f"character marks must be positive, got {text!r}")
    return marks


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
