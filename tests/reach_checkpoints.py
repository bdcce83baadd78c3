"""A checkpoint folder for the reach-and-use tests: tiny GRU, LSTM and Nested LSTM as in conftest.py, and a tiny vanilla RNN.

Their vocabulary is conftest's with the walkthrough's words added, so that the walkthrough notes have rows for the words
in the text. metrics.json holds, for every model, the shipped record of the same unit where there is one (so that the
article's section on the vanilla RNN renders as it does for the shipped models), with the tiny model's own config and
parameter counts, and a copy test in the evaluation's format (training/intervention.py) with made-up gains: falling with
the gap, the vanilla RNN's at 0.
"""

import copy
import json
from pathlib import Path

import torch
from conftest import TINY_HIDDEN, TINY_LAYERS, TINY_WORDS, tiny_metrics

from models.checkpoint import save_checkpoint
from models.net import AutocompleteNet, ModelConfig
from models.vocab import SPECIAL_WORDS, Vocabulary

BUNDLED_METRICS = Path(__file__).resolve().parent.parent / "models" / "checkpoints" / "metrics.json"
UNITS = ("gru", "lstm", "nlstm", "rnn")
WALKTHROUGH_WORDS = ("learning", "advanced", "grammar", "biology", "schools", "taught")
# Gains at the three gaps (5–24, 25–59, 60+), in nats, per unit: the order of issue 33's table.
GAINS = {"gru": (0.116, 0.076, 0.039), "lstm": (0.049, 0.042, 0.023), "nlstm": (0.002, 0.001, 0.0005), "rnn": (0.001, 0.0, 0.0)}
REACH_10 = {"gru": 0.09, "lstm": 0.06, "nlstm": 0.01, "rnn": 0.001}
CASES = 600


def intervention_record(gains: tuple[float, float, float]) -> dict:
    buckets = []
    for (low, high, label), gain in zip(((5, 24, "5–24"), (25, 59, "25–59"), (60, None, "60+")), gains):
        half = 0.01 + gain / 4
        buckets.append({
            "low": low, "high": high, "label": label, "cases": CASES,
            "gain_space": gain, "gain_space_ci95": [gain - half, gain + half],
            "gain_first_letter": gain / 2, "gain_first_letter_ci95": [gain / 2 - half, gain / 2 + half],
            "top3_space_with": 0.2, "top3_space_without": 0.2 - gain, "top3_first_letter_with": 0.3, "top3_first_letter_without": 0.3 - gain,
        })
    return {
        "method": "first occurrence of a repeated word swapped for another vocabulary word of the same length",
        "sample": {"split": "test", "seed": 0, "cases_per_bucket": CASES},
        "buckets": buckets,
        "example": {"word": "grammar", "replacement": "biology", "position": 159, "probability_with": 0.02, "probability_without": 0.01,
                    "gain": 0.6931471805599453},
    }


def write_reach_checkpoints(directory: Path, seed: int = 0) -> Path:
    """The four tiny random-weight checkpoints, vocab.json and the metrics.json described above, in `directory`."""
    torch.manual_seed(seed)
    vocabulary = Vocabulary(SPECIAL_WORDS + list(TINY_WORDS) + list(WALKTHROUGH_WORDS))
    configs, nets = {}, {}
    for unit in UNITS:
        configs[unit] = ModelConfig(unit=unit, hidden_size=TINY_HIDDEN, num_layers=TINY_LAYERS.get(unit, 2),
                                    depth=2 if unit == "nlstm" else 1, num_words=len(vocabulary))
        nets[unit] = AutocompleteNet(configs[unit])
        with torch.no_grad():
            nets[unit].embedding.weight.mul_(0.5)  # as conftest's: connectivity far from round-off
        save_checkpoint(nets[unit], directory / f"{unit}.safetensors")
    vocabulary.save(directory / "vocab.json")
    tiny = tiny_metrics({unit: configs[unit] for unit in TINY_LAYERS}, nets)["models"]
    shipped = json.loads(BUNDLED_METRICS.read_text())["models"] if BUNDLED_METRICS.is_file() else {}
    models = {}
    for unit in UNITS:
        record = copy.deepcopy(shipped.get(unit) or tiny.get(unit) or tiny["gru"])
        record.update(unit=unit, config=configs[unit].to_dict(), parameters=nets[unit].parameter_counts())
        record["memory"]["test"]["reach_10"] = REACH_10[unit]
        record["memory"]["test"]["reach_10_ci95"] = [REACH_10[unit] * 0.9, REACH_10[unit] * 1.1]
        record["intervention"] = intervention_record(GAINS[unit])
        models[unit] = record
    (directory / "metrics.json").write_text(json.dumps({"models": models}))
    return directory
