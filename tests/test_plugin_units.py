"""A unit from outside the project goes the whole public path: register, train, evaluate, export, serve.

The toy unit below is written here, in the test, the way a user would write one: a
hand-written cell looping over time, registered with `register_unit`. Training,
evaluation and export run in this process (a `python -m training` subprocess would not
see a unit registered at run time); the server is the app itself on the exported folder.
Once the toy unit is forgotten, its checkpoint is one whose unit is not installed.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from torch import Tensor, nn

from app.main import create_app
from app.settings import PROJECT_ROOT, Settings
from models.checkpoint import CheckpointError, load_checkpoint
from models.connectivity import autograd_rows
from models.net import BUNDLED, AutocompleteNet
from models.text import encode, normalise
from models.units import Unit, get_unit, installed_units, register_unit, unit_names, unregister_unit
from training.cli import units_with_runs
from training.dataset import prepare_dataset
from training.describe import describe
from training.evaluate import evaluate_run
from training.export import export_runs
from training.train import TrainOptions, train

HIDDEN = 16
STEPS = 30
OTHER_ENTRY = {"unit": "gru", "characters_seen": 123, "test": {"accuracy": 0.5}}


class LeakyTanh(nn.Module):
    """h_t = h_{t-1} / 2 + tanh(W x_t + U h_{t-1} + b) / 2, one layer, one step at a time.

    Its state follows PyTorch's layout, [layers, batch, hidden], as the server's keystroke
    path reads the top layer's h from it.
    """

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.input = nn.Linear(hidden_size, hidden_size)
        self.recurrent = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = x.new_zeros(x.shape[0], self.hidden_size) if state is None else state[0]
        outputs = []
        for t in range(x.shape[1]):
            h = 0.5 * h + 0.5 * torch.tanh(self.input(x[:, t]) + self.recurrent(h))
            outputs.append(h)
        return torch.stack(outputs, dim=1), h[None]


def build_leaky_tanh(hidden_size: int, num_layers: int, depth: int) -> nn.Module:
    if num_layers != 1:
        raise ValueError(f"the leaky tanh unit has one layer, not {num_layers}")
    return LeakyTanh(hidden_size)


TOY = Unit("leaky", "Leaky tanh", "A test's own unit: half the old state plus half a tanh step.", build_leaky_tanh, default_layers=1)


def corpus_text(words: int = 30_000) -> str:
    rng = np.random.default_rng(0)
    phrases = ["the cat sat on the mat", "a dog ran in the park", "birds fly over green hills", "she reads books at night"]
    return " ".join(phrases[i] for i in rng.integers(0, len(phrases), words // 5))


@pytest.fixture(scope="module")
def toy_unit():
    register_unit(TOY)
    yield TOY
    unregister_unit(TOY.name)


@pytest.fixture(scope="module")
def exported(toy_unit: Unit, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy unit trained a few steps on a tiny corpus, evaluated and exported: the checkpoint folder."""
    folder = tmp_path_factory.mktemp("plugin")
    data = folder / "data"
    prepare_dataset(corpus_text(), data, {"name": "phrases", "sha256": "0" * 64}, vocabulary_size=30)
    runs = folder / "runs"
    # Tiny matrices: one thread, as threads only wait on each other when the CPU is shared.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(TrainOptions(unit=TOY.name, preset=BUNDLED, data=data, out=runs / TOY.name, bf16=False, hidden_size=HIDDEN,
                           epochs=20, max_steps=STEPS, eval_every=STEPS // 3, eval_sequences=32))
        evaluate_run(runs / TOY.name, data, max_sequences=64, memory_positions=200)
        # Exported beside another model's entry, which must stay as it was.
        (folder / "checkpoints").mkdir()
        (folder / "checkpoints" / "metrics.json").write_text(json.dumps({"models": {"other": OTHER_ENTRY}}))
        export_runs(runs, data, folder / "checkpoints", [TOY.name], "bundled")
    finally:
        torch.set_num_threads(threads)
    return folder


def test_a_registered_unit_is_listed_built_and_refused_twice(toy_unit: Unit) -> None:
    assert unit_names()[-1] == "leaky" and get_unit("leaky") is toy_unit
    net = AutocompleteNet(BUNDLED.model_config("leaky"))
    assert net.config.num_layers == 1 and isinstance(net.rnn, LeakyTanh)
    with pytest.raises(ValueError, match="'leaky' is already registered"):
        register_unit(toy_unit)


def test_describe_counts_a_registered_unit(toy_unit: Unit) -> None:
    recurrent = 2 * 256 * 256 + 256  # W and its bias, U without one
    assert re.search(rf"^leaky\s+recurrent\s+{recurrent:,}\s+-$", describe(BUNDLED), flags=re.MULTILINE)
    assert AutocompleteNet(BUNDLED.model_config("leaky")).parameter_counts()["recurrent"] == recurrent


def test_the_vanilla_rnn_comes_from_its_installed_package() -> None:
    unit = installed_units()["rnn"]
    assert unit.display_name == "Vanilla RNN" and unit.build.__module__ == "vanilla_rnn"
    net = AutocompleteNet(BUNDLED.model_config("rnn"))
    assert isinstance(net.rnn, nn.RNN) and net.rnn.nonlinearity == "tanh"
    assert (net.config.num_layers, net.config.hidden_size) == (2, 256)


def test_training_learns_and_export_writes_the_units_entry(exported: Path) -> None:
    models = json.loads((exported / "checkpoints" / "metrics.json").read_text())["models"]
    assert list(models) == ["other", "leaky"] and models["other"] == OTHER_ENTRY
    entry = models["leaky"]
    curve = entry["training_curve"]
    assert [row["step"] for row in curve] == [10, 20, 30]
    assert curve[-1]["train_loss"] < curve[0]["train_loss"] and curve[-1]["valid_loss"] < curve[0]["valid_loss"]
    assert (entry["unit"], entry["name"], entry["steps"]) == ("leaky", "Leaky tanh", STEPS)
    words = len(json.loads((exported / "checkpoints" / "vocab.json").read_text())["words"])
    assert entry["config"] == {**BUNDLED.model_config("leaky").to_dict(), "hidden_size": HIDDEN, "num_words": words}
    assert 0 < entry["test"]["accuracy"] <= 1 and entry["memory"]["test"]["rows"] >= 200
    assert sum(entry["memory"]["example"]["by_distance"]) == pytest.approx(1.0)
    net = load_checkpoint(exported / "checkpoints" / "leaky.safetensors")
    assert isinstance(net.rnn, LeakyTanh) and net.config.hidden_size == HIDDEN


def test_the_server_serves_a_registered_unit(exported: Path) -> None:
    with TestClient(create_app(Settings(checkpoint_dir=exported / "checkpoints"))) as client:
        (model,) = client.get("/api/models").json()
        assert (model["id"], model["name"], model["unit"], model["num_layers"]) == ("leaky", "Leaky tanh", "leaky", 1)
        assert client.get("/healthz").json()["models"] == ["leaky"]

        text = normalise("the cat sat on the m")
        rows = client.post("/api/autocomplete", json={"text": text, "top_k": 2}).json()["models"]["leaky"]
        assert [row["position"] for row in rows] == list(range(len(text)))
        # The keystroke path continues from the cached state and must agree with the whole text's answer.
        for typed in (text[:-1], text, text):
            (last,) = client.post("/api/autocomplete", json={"text": typed, "positions": "last", "top_k": 2}).json()["models"]["leaky"]
            assert last["suggestions"][0]["word"] == rows[len(typed) - 1]["suggestions"][0]["word"]
            assert last["suggestions"][0]["probability"] == pytest.approx(rows[len(typed) - 1]["suggestions"][0]["probability"], rel=1e-5)

        positions = [len(text) - 1, 4, 11]
        answer = client.post("/api/connectivity", json={"text": text, "model": "leaky", "positions": positions, "word": "mat",
                                                        "method": "gradient", "significant_digits": 9})
        assert answer.status_code == 200
        net = load_checkpoint(exported / "checkpoints" / "leaky.safetensors")
        word_id = net_vocabulary_id(exported, "mat")
        expected = autograd_rows(net, torch.tensor(encode(text)), positions, [word_id] * len(positions))
        for row, reference in zip(answer.json()["rows"], expected):
            values = torch.tensor(row["connectivity"])
            assert row["word"] == "mat" and len(values) == row["position"] + 1
            torch.testing.assert_close(values, reference[: row["position"] + 1], rtol=1e-4, atol=1e-4 * float(reference.abs().max()))


def net_vocabulary_id(exported: Path, word: str) -> int:
    return json.loads((exported / "checkpoints" / "vocab.json").read_text())["words"].index(word)


def test_evaluate_and_export_default_to_the_units_with_a_run(tmp_path: Path) -> None:
    for name in ("rnn", "gru", "notes"):
        (tmp_path / name).mkdir()
    assert units_with_runs(tmp_path) == ["gru", "rnn"]
    with pytest.raises(FileNotFoundError, match="holds no run of a registered unit"):
        units_with_runs(tmp_path / "gru")


def test_a_checkpoint_of_a_unit_not_installed_is_refused_by_name(exported: Path) -> None:
    """Without the toy unit: its checkpoint names the missing unit, in the loader and at the server's start-up."""
    checkpoint = exported / "checkpoints" / "leaky.safetensors"
    unregister_unit("leaky")
    try:
        with pytest.raises(CheckpointError, match=r"leaky.safetensors: unit 'leaky' is not installed .* entry-point group"):
            load_checkpoint(checkpoint)
    finally:
        register_unit(TOY)
    environment = {**os.environ, "RNN_CHECKPOINT_DIR": str(exported / "checkpoints"), "RNN_PORT": "1"}
    result = subprocess.run([sys.executable, "-m", "app"], cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "unit 'leaky' is not installed" in result.stderr and "pip install" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
