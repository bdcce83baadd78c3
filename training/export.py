"""Write the serving checkpoints: `<unit>.safetensors`, `vocab.json` and `metrics.json`."""

import csv
import json
from pathlib import Path

import numpy as np
import torch

from models.checkpoint import load_checkpoint, load_vocabulary, save_checkpoint
from models.net import AutocompleteNet
from models.units import get_unit
from models.vocab import UNKNOWN, Vocabulary
from training.corpus import sha256_of
from training.dataset import Dataset, batch_tensors
from training.evaluate import EVALUATION_FILE
from training.train import LOG_FILE, SNAPSHOT_DIR, STATE_FILE, RunFolder, checkpoint_metadata, weights_from_state

STORAGE_DTYPE = torch.float16
AGREEMENT_SEQUENCES = 256


@torch.no_grad()
def storage_changed_predictions(original: AutocompleteNet, stored: AutocompleteNet, chars: np.ndarray, targets: np.ndarray) -> float:
    """Share of real-word test positions whose top-1 word differs between two copies of a model."""
    rows = np.arange(min(AGREEMENT_SEQUENCES, len(chars)))
    x, y = batch_tensors(chars, targets, rows, torch.device("cpu"))
    mask = y > UNKNOWN
    top = [net.logits(net.features(x)[0]).argmax(-1)[mask] for net in (original, stored)]
    return float((top[0] != top[1]).float().mean())


def read_curve(path: Path) -> list[dict]:
    with open(path, newline="") as file:
        return [
            {
                "step": int(row["step"]), "seconds": float(row["seconds"]), "characters": int(row["characters"]),
                "train_loss": float(row["train_loss"]), "valid_loss": float(row["valid_loss"]) if row["valid_loss"] else None,
            }
            for row in csv.DictReader(file)
        ]


def history_point(characters: int, evaluation: dict) -> dict:
    """One row of a model's history: test metrics and memory after `characters` training characters."""
    by_known = evaluation["accuracy_by_letters_known"]
    counts = np.array(by_known["count"])
    top3 = np.array([value or 0.0 for value in by_known["top3"]])
    memory = evaluation["memory"]
    return {
        "characters": characters,
        "test_sequences": evaluation["test"]["sequences"],
        "cross_entropy": evaluation["test"]["cross_entropy"],
        "accuracy": evaluation["test"]["accuracy"],
        "accuracy_every_character": evaluation["test"].get("accuracy_every_character"),
        "top3_accuracy": float((top3 * counts).sum() / max(counts.sum(), 1)),
        "before_word": memory["test"]["before_word"],
        "reach_10": memory["test"]["reach_10"],
        "example_before_word": memory["example"]["before_word"],
        "example_reach_10": memory["example"]["reach_10"],
    }


def with_every_character(points: list[dict], test_targets: np.ndarray) -> list[dict]:
    """History points evaluated before the every-character accuracy was recorded get it from what they kept: their real-word
    hits over every character of the same test sequences. That is the paper's count when the model never guesses `<unknown>`
    first at an `<unknown>` word, which the evaluations that count it (`unknown_first`) find for every shipped model."""
    filled = []
    for point in points:
        if point.get("accuracy_every_character") is None and point.get("accuracy") is not None and point.get("test_sequences"):
            targets = test_targets[: point["test_sequences"]]
            real, characters = int((targets > UNKNOWN).sum()), int((targets > 0).sum())
            point = point | {"accuracy_every_character": point["accuracy"] * real / characters, "accuracy_every_character_derived": True}
        filled.append(point)
    return filled


def refresh_evaluation(evaluation_file: Path, unit: str, data: Path, out: Path) -> Path:
    """Put a new evaluation of a shipped checkpoint (`python -m training evaluate --checkpoint`) into `out`/metrics.json:
    its test metrics, memory profile, copy test and last history point; the weights and the training record stay."""
    metrics_path = out / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    if unit not in metrics["models"]:
        raise ValueError(f"{metrics_path} has no model {unit!r}; export its run first")
    entry, evaluation = metrics["models"][unit], json.loads(evaluation_file.read_text())
    evaluation.pop("characters_seen", None)
    checkpoint = out / f"{unit}.safetensors"
    if evaluation.pop("checkpoint_sha256", None) != sha256_of(checkpoint):
        raise ValueError(f"{evaluation_file} is not an evaluation of {checkpoint} as it is now; "
                         f"run `python -m training evaluate --checkpoint {checkpoint} --out {evaluation_file}` again")
    evaluated = entry["characters_seen"]
    _, test_targets = Dataset.open(data).split("test")
    entry.update(evaluation)
    history = [point for point in entry["history"] if point["characters"] != evaluated]
    entry["history"] = with_every_character(history, test_targets) + [history_point(evaluated, evaluation)]
    metrics_path.write_text(json.dumps(metrics, indent=1))
    return metrics_path


def read_history(run: Path, inherited: list[dict], characters_seen: int, evaluation: dict) -> list[dict]:
    """The model's history by characters seen: what a warm start inherited, the run's snapshot evaluations
    (`snapshots/chars-N.json`, N the mark passed; they win over an inherited point at the same N) and the model's own."""
    points = {point["characters"]: point for point in inherited}
    for path in (run / SNAPSHOT_DIR).glob("chars-*.json"):
        mark = int(path.stem.removeprefix("chars-"))
        points[mark] = history_point(mark, json.loads(path.read_text()))
    earlier = [points[characters] for characters in sorted(points) if characters < characters_seen]
    return earlier + [history_point(characters_seen, evaluation)]


def refuse_to_shrink(out: Path, metrics: dict, runs: Path, units: list[str]) -> None:
    """ValueError if a checkpoint in `out` was trained on more characters than the run that would replace it
    (the shipped models took hours; a short run must not overwrite one unnoticed)."""
    for unit in units:
        shipped = metrics["models"].get(unit, {}).get("characters_seen")
        if (out / f"{unit}.safetensors").is_file() and shipped and (runs / unit / STATE_FILE).is_file():
            seen = RunFolder(runs / unit).load_progress().characters
            if seen < shipped:
                raise ValueError(f"{out / unit}.safetensors was trained on {shipped:,} characters, {runs / unit} on {seen:,}; "
                                 "export to another folder with --out, or pass --force to replace it")


def refuse_other_vocabulary(out: Path, vocabulary: Vocabulary, units: list[str]) -> None:
    """ValueError if models in `out` that this export leaves in place read another vocab.json than the runs'
    (a folder has one vocabulary: a model of other text would turn theirs into wrong words)."""
    others = sorted(path.stem for path in out.glob("*.safetensors") if path.stem not in units)
    if others and (out / "vocab.json").is_file() and load_vocabulary(out).words != vocabulary.words:
        raise ValueError(f"{out / 'vocab.json'}, which {', '.join(others)} use, is not the vocabulary these runs were trained "
                         "with; export to a folder of its own with --out")


def export_runs(runs: Path, data: Path, out: Path, units: list[str], preset: str, force: bool = False) -> list[Path]:
    """Export each unit's evaluated run from `runs/<unit>/` into `out/`, finished or stopped; returns the files written.
    Refuses, unless `force`, to replace a checkpoint trained on more characters than its run."""
    dataset = Dataset.open(data)
    test_chars, test_targets = dataset.split("test")
    metrics_path = out / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {"models": {}}
    if not force:
        refuse_to_shrink(out, metrics, runs, units)
    refuse_other_vocabulary(out, dataset.vocabulary, units)
    written = []
    for unit in units:
        run = runs / unit
        for needed, how in ((STATE_FILE, "train it"), (EVALUATION_FILE, "run `python -m training evaluate`")):
            if not (run / needed).is_file():
                raise FileNotFoundError(f"{run / needed} does not exist; {how} first")
        # The latest saved weights: the finished model, or where a stopped run left off (a later --resume goes on from them).
        net, progress = weights_from_state(run / STATE_FILE)
        evaluation = json.loads((run / EVALUATION_FILE).read_text())
        evaluated = evaluation.pop("characters_seen", None)
        if evaluated != progress.characters:
            raise ValueError(f"{run / EVALUATION_FILE} is of the weights after {evaluated} characters, but the run has seen "
                             f"{progress.characters:,}; run `python -m training evaluate` again")
        curve = read_curve(run / LOG_FILE)
        # An earlier export of this same run (its log passes the characters that export shipped at) keeps its history
        # points, its own evaluation among them: a resumed run inherits nothing else.
        shipped = metrics["models"].get(unit, {})
        exported_before = shipped.get("history", []) if shipped.get("characters_seen") in {row["characters"] for row in curve} else []
        target = out / f"{unit}.safetensors"
        save_checkpoint(net, target, dtype=STORAGE_DTYPE, metadata={"preset": preset})
        changed = storage_changed_predictions(net, load_checkpoint(target), test_chars, test_targets)
        if changed > 0.001:
            raise ValueError(f"{target}: float16 storage changes {changed:.2%} of top-1 predictions (limit 0.1 %)")
        metrics["models"][unit] = {
            "unit": unit,
            "name": get_unit(unit).display_name,
            "config": net.config.to_dict(),
            "parameters": net.parameter_counts(),
            **checkpoint_metadata(preset, dataset.info["corpus"], progress),
            "storage": {"dtype": str(STORAGE_DTYPE).removeprefix("torch."), "top1_changed": changed},
            **evaluation,
            "history": with_every_character(
                read_history(run, [*progress.history, *exported_before], progress.characters, evaluation), test_targets
            ),
            "training_curve": curve,
        }
        written.append(target)
    dataset.vocabulary.save(out / "vocab.json")
    metrics_path.write_text(json.dumps(metrics, indent=1))
    return written + [out / "vocab.json", metrics_path]
