"""Write the serving checkpoints: `<unit>.safetensors`, `vocab.json` and `metrics.json`."""

import csv
import json
from pathlib import Path

import numpy as np
import torch

from models.checkpoint import load_checkpoint, save_checkpoint
from models.net import AutocompleteNet
from models.units import get_unit
from models.vocab import UNKNOWN
from training.dataset import Dataset, batch_tensors
from training.evaluate import EVALUATION_FILE
from training.train import LOG_FILE, SNAPSHOT_DIR, STATE_FILE, checkpoint_metadata, weights_from_state

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
        "top3_accuracy": float((top3 * counts).sum() / max(counts.sum(), 1)),
        "before_word": memory["test"]["before_word"],
        "reach_10": memory["test"]["reach_10"],
        "example_before_word": memory["example"]["before_word"],
        "example_reach_10": memory["example"]["reach_10"],
    }


def read_history(run: Path, inherited: list[dict], characters_seen: int, evaluation: dict) -> list[dict]:
    """The model's history by characters seen: what a warm start inherited, the run's snapshot evaluations
    (`snapshots/chars-N.json`, N the mark passed; they win over an inherited point at the same N) and the model's own."""
    points = {point["characters"]: point for point in inherited}
    for path in (run / SNAPSHOT_DIR).glob("chars-*.json"):
        mark = int(path.stem.removeprefix("chars-"))
        points[mark] = history_point(mark, json.loads(path.read_text()))
    earlier = [points[characters] for characters in sorted(points) if characters < characters_seen]
    return earlier + [history_point(characters_seen, evaluation)]


def export_runs(runs: Path, data: Path, out: Path, units: list[str], preset: str) -> list[Path]:
    """Export each unit's evaluated run from `runs/<unit>/` into `out/`, finished or stopped; returns the files written."""
    dataset = Dataset.open(data)
    test_chars, test_targets = dataset.split("test")
    metrics_path = out / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {"models": {}}
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
            "history": read_history(run, progress.history, progress.characters, evaluation),
            "training_curve": read_curve(run / LOG_FILE),
        }
        written.append(target)
    dataset.vocabulary.save(out / "vocab.json")
    metrics_path.write_text(json.dumps(metrics, indent=1))
    return written + [out / "vocab.json", metrics_path]
