"""A metrics.json with every field the evaluation writes (/tmp/team/metrics-contract.md's): intervals, the paper's
every-character accuracy, the copy test. Tests write it into a copy of the tiny checkpoints to serve the page on it.

The numbers are made up so that, as written, each test-split claim of app/claims.py holds: the GRU reaches further
than the LSTM and the Nested LSTM least, intervals apart; the LSTM is ahead once 7 or more letters are known; the
GRU and the LSTM differ by half a point. Tests change one number to flip one verdict.
"""

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import torch

from models.checkpoint import save_checkpoint
from models.net import AutocompleteNet, ModelConfig
from models.vocab import Vocabulary

LETTERS = 22
# Per unit: before the current word, reach-10, every-character top-1, real-word top-1, cross-entropy.
PROFILES = {
    "gru": {"before_word": 0.45, "reach_10": 0.135, "every": 0.500, "real": 0.553, "cross_entropy": 2.261},
    "lstm": {"before_word": 0.35, "reach_10": 0.079, "every": 0.495, "real": 0.544, "cross_entropy": 2.323},
    "nlstm": {"before_word": 0.16, "reach_10": 0.0084, "every": 0.462, "real": 0.511, "cross_entropy": 2.552},
}
HALF_WIDTH = 0.004


def around(value: float, half_width: float = HALF_WIDTH) -> list[float]:
    return [value - half_width, value + half_width]


def curves(base: float, lead: float) -> dict:
    """Top-1/2/3 by letters known rising from `base`, `lead` added from 7 letters on, with word counts falling past 1,000 at 15."""
    top1 = [min(0.95, base + 0.03 * k + (lead if k >= 7 else 0.0)) for k in range(LETTERS)]
    return {
        "top1": top1,
        "top2": [min(0.97, value + 0.05) for value in top1],
        "top3": [min(0.99, value + 0.08) for value in top1],
        "count": [max(0, 800_000 - 55_000 * k) for k in range(LETTERS)],
    }


def intervention(gain: float) -> dict:
    bucket = {"cases": 600, "gain_space": gain / 2, "gain_space_ci95": around(gain / 2, 0.02), "gain_first_letter": gain,
              "gain_first_letter_ci95": around(gain, 0.03), "top3_space_with": 0.2, "top3_space_without": 0.15,
              "top3_first_letter_with": 0.45, "top3_first_letter_without": 0.3}
    return {
        "method": "first occurrence of a repeated word swapped for another vocabulary word of the same length",
        "sample": {"split": "test", "seed": 0, "cases_per_bucket": 600},
        "buckets": [{"low": 5, "high": 24, "label": "5–24", **bucket}, {"low": 25, "high": 59, "label": "25–59", **bucket},
                    {"low": 60, "high": None, "label": "60+", **bucket}],
        "example": {"word": "grammar", "replacement": "biology", "position": 159, "probability_with": 0.002, "probability_without": 0.001,
                    "gain": 0.69},
    }


def with_contract_fields(metrics: dict) -> dict:
    """`metrics` (the tiny checkpoints' record) with the contract's fields added to each of the three units."""
    metrics = copy.deepcopy(metrics)
    for unit, numbers in PROFILES.items():
        record = metrics["models"][unit]
        record["config"]["hidden_size"] = record["config"].get("hidden_size", 16)
        record["test"] = {
            "cross_entropy": numbers["cross_entropy"], "cross_entropy_ci95": around(numbers["cross_entropy"], 0.01),
            "accuracy": numbers["real"], "accuracy_ci95": around(numbers["real"]),
            "accuracy_every_character": numbers["every"], "accuracy_every_character_ci95": around(numbers["every"], 0.002),
            "sequences": 25_391, "positions": 4_525_212, "characters": 5_024_321,
            "bootstrap": {"resamples": 1000, "seed": 0, "resampled": "test sequences", "level": 0.95},
        }
        lead = 0.01 if unit == "lstm" else 0.0
        record["accuracy_by_letters_known"] = {**curves(0.15, lead), "every_character": curves(0.14, lead)}
        test = record["memory"]["test"]
        test["before_word"], test["reach_10"] = numbers["before_word"], numbers["reach_10"]
        test["before_word_ci95"], test["reach_10_ci95"] = around(numbers["before_word"]), around(numbers["reach_10"], 0.002)
        test["by_distance_ci95"] = [[share * 0.9, share * 1.1] for share in test["by_distance"]]
        for point in record["history"]:
            point["accuracy_every_character"] = point["accuracy"] - 0.04
            point["reach_10"] = numbers["reach_10"] * point["characters"] / record["history"][-1]["characters"]
            point["test_sequences"] = 25_391
        record["intervention"] = intervention(0.4 if unit == "gru" else 0.2)
    return metrics


def add_vanilla_rnn(directory: Path, metrics: dict) -> None:
    """A tiny vanilla RNN beside the gated units, with a record like the shipped one's: tested on fewer sequences, trained
    with a sampled softmax from its first step, its memory vanishing to 10⁻²⁹; and a GRU that switched to one halfway."""
    torch.manual_seed(3)
    words = len(Vocabulary.load(directory / "vocab.json"))
    net = AutocompleteNet(ModelConfig(unit="rnn", hidden_size=16, num_layers=2, num_words=words))
    save_checkpoint(net, directory / "rnn.safetensors")
    record = copy.deepcopy(metrics["models"]["gru"])
    record.update(unit="rnn", name="Vanilla RNN", config=net.config.to_dict(), parameters=net.parameter_counts(),
                  legs=[{"device": "CPU", "sampled_words": 1024, "characters": 1000, "seconds": 4750.9}])
    record["test"].update(sequences=2048, accuracy=0.455, accuracy_every_character=0.412)
    test = record["memory"]["test"]
    test["by_distance"] = [0.39, 0.22, 0.14, 0.19, 0.059, 0.0053, 4.5e-5, 4.4e-13, 1.7074157901505907e-29]
    test.update(before_word=0.233, reach_10=0.0054, before_word_ci95=around(0.233), reach_10_ci95=around(0.0054, 0.001))
    for point in record["history"]:
        point["test_sequences"] = 2048
    metrics["models"]["rnn"] = record
    metrics["models"]["gru"]["legs"] = [
        {"device": "NVIDIA H100 80GB HBM3", "sampled_words": 0, "characters": 600, "seconds": 30.2},
        {"device": "CPU", "sampled_words": 2048, "characters": 400, "seconds": 1200.7},
    ]


def add_newer_unit(directory: Path, metrics: dict) -> None:
    """A tiny minGRU (the plug-in of examples/mingru) halfway through its budget, measured at the others' first point too."""
    torch.manual_seed(4)
    words = len(Vocabulary.load(directory / "vocab.json"))
    net = AutocompleteNet(ModelConfig(unit="mingru", hidden_size=16, num_layers=2, num_words=words))
    save_checkpoint(net, directory / "mingru.safetensors")
    record = copy.deepcopy(metrics["models"]["lstm"])
    first = record["history"][0]
    record.update(unit="mingru", name="minGRU", config=net.config.to_dict(), parameters=net.parameter_counts(),
                  characters_seen=first["characters"] + 100)
    record["history"] = [{**first, "reach_10": 0.0123}, {**first, "characters": first["characters"] + 100, "reach_10": 0.0321}]
    record["memory"]["test"].update(reach_10=0.0321, before_word=0.0456)
    record["intervention"]["buckets"][1].update(gain_space=0.0071, gain_space_ci95=[0.0012, 0.0133])
    metrics["models"]["mingru"] = record


def write_contract_checkpoints(
    tiny_dir: Path, directory: Path, change: Callable[[dict], None] | None = None, vanilla: bool = False, newer: bool = False
) -> Path:
    """A copy of the tiny checkpoints in `directory` whose metrics.json has the contract's fields (and, with `vanilla`, a
    vanilla RNN beside them; with `newer`, a minGRU), then `change`d in place."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in tiny_dir.iterdir():
        shutil.copy(path, directory)
    metrics = with_contract_fields(json.loads((tiny_dir / "metrics.json").read_text()))
    if vanilla:
        add_vanilla_rnn(directory, metrics)
    if newer:
        add_newer_unit(directory, metrics)
    if change is not None:
        change(metrics)
    (directory / "metrics.json").write_text(json.dumps(metrics))
    return directory
