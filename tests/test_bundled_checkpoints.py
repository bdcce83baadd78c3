"""The checkpoints shipped in models/checkpoints/, read through the public loader.

Four models ship: the paper's three and the vanilla RNN, whose unit comes from its own
package (examples/vanilla-rnn, installed by `make install`).
"""

import json
from pathlib import Path

import pytest
import torch

from models.checkpoint import FORMAT, load_checkpoint, load_vocabulary, read_metadata
from models.net import BUNDLED
from models.text import CHARS
from models.units import PAPER_UNITS

CHECKPOINTS = Path(__file__).resolve().parents[1] / "models" / "checkpoints"
UNITS = ("gru", "lstm", "nlstm", "rnn", "mingru", "mlstm")
# The paper's three trained on a GPU to the full budget; the vanilla RNN, minGRU and the mLSTM on a CPU, at least as far as their last export.
MIN_CHARACTERS = {**dict.fromkeys(PAPER_UNITS, 60_000_000), "rnn": 179_000_000, "mingru": 50_000_000, "mlstm": 60_000_000}
pytestmark = pytest.mark.skipif(
    not all((CHECKPOINTS / f"{unit}.safetensors").is_file() for unit in UNITS), reason="bundled models not exported yet"
)


@pytest.mark.parametrize("unit", UNITS)
def test_shipped_checkpoint_loads_with_the_bundled_config(unit):
    metadata = read_metadata(CHECKPOINTS / f"{unit}.safetensors")
    assert metadata["format"] == FORMAT
    config = json.loads(metadata["config"])
    assert config == BUNDLED.model_config(unit).to_dict()
    net = load_checkpoint(CHECKPOINTS / f"{unit}.safetensors")
    assert net.embedding.weight.shape == (28, BUNDLED.hidden_size)
    assert net.output.weight.shape == (BUNDLED.vocabulary_size + 2, BUNDLED.hidden_size)
    assert torch.all(net.embedding.weight[0] == 0)


def test_shipped_vocabulary():
    vocabulary = load_vocabulary(CHECKPOINTS)
    assert len(vocabulary) == 2**14 + 2
    assert vocabulary.words[:4] == ["<eos>", "<unknown>", "the", "of"]
    assert json.loads((CHECKPOINTS / "vocab.json").read_text())["chars"] == CHARS


def test_metrics_hold_every_field_the_article_reads():
    metrics = json.loads((CHECKPOINTS / "metrics.json").read_text())["models"]
    assert set(metrics) == set(UNITS)
    for unit, entry in metrics.items():
        assert entry["preset"] == "bundled" and entry["unit"] == unit
        assert entry["corpus"]["name"] == "wiki100m" and len(entry["corpus"]["sha256"]) == 64
        assert entry["characters_seen"] >= MIN_CHARACTERS[unit]
        history = entry["history"]
        assert [point["characters"] for point in history][-1] == entry["characters_seen"]
        assert all(a["characters"] < b["characters"] for a, b in zip(history, history[1:]))
        memory = entry["memory"]
        assert memory["test"]["rows"] >= 20_000 and len(memory["test"]["by_distance"]) == len(memory["buckets"]) == 9
        assert sum(memory["test"]["by_distance"]) == pytest.approx(1.0) and sum(memory["example"]["by_distance"]) == pytest.approx(1.0)
        assert memory["test"]["reach_10"] == pytest.approx(sum(memory["test"]["by_distance"][5:]))
        assert entry["training_seconds"] > 0 and entry["steps"] > 0
        legs = entry["legs"]
        assert sum(leg["characters"] for leg in legs) == entry["characters_seen"]
        assert sum(leg["seconds"] for leg in legs) == pytest.approx(entry["training_seconds"], abs=0.1 * len(legs))
        assert 0 < entry["test"]["cross_entropy"] < 10 and 0 < entry["test"]["accuracy"] < 1
        by_known = entry["accuracy_by_letters_known"]
        assert {"top1", "top2", "top3", "count"} <= set(by_known) and len(by_known["top1"]) == 22
        curve = entry["training_curve"]
        assert len(curve) >= 5 and {"step", "seconds", "characters", "train_loss", "valid_loss"} <= set(curve[0])
        assert curve[-1]["valid_loss"] < curve[0]["valid_loss"]
        assert entry["storage"]["top1_changed"] <= 0.001
    sizes = sum((CHECKPOINTS / f"{unit}.safetensors").stat().st_size for unit in UNITS)
    assert sizes < 60e6


def test_the_article_says_which_units_trained_with_a_sampled_softmax(bundled_client):
    metrics = json.loads((CHECKPOINTS / "metrics.json").read_text())["models"]
    sampled = [unit for unit, entry in metrics.items() if any(leg["sampled_words"] for leg in entry["legs"])]
    assert "rnn" in sampled
    page = " ".join(bundled_client.get("/").text.split())
    assert metrics["rnn"]["legs"][0]["sampled_words"]
    assert "it was trained with a sampled softmax over the output words, the CPU's shortcut, from its first step.</p>" in page
