"""Shared fixtures: tiny random-weight checkpoints and a real uvicorn server of the app.

Other test modules (the browser tests too) reuse `tiny_checkpoint_dir`,
`live_server` and `serve_app`.
"""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import torch
import uvicorn
from fastapi.testclient import TestClient
from processes import free_port

from app.main import create_app
from app.settings import BUNDLED_CHECKPOINTS, Settings
from models.checkpoint import load_checkpoint, save_checkpoint
from models.memory import buckets_description
from models.net import AutocompleteNet, ModelConfig
from models.units import get_unit
from models.vocab import SPECIAL_WORDS, Vocabulary

TINY_WORDS = (
    "the of and in a to is was on for as by with he that at from his it an were are which this be or also first new "
    "had one two three she not but their after its they have been there who all time other into more most people "
    "world city cat dog sat"
).split()
TINY_HIDDEN = 16
TINY_LAYERS = {"gru": 2, "lstm": 2, "nlstm": 1}
UNITS = ("gru", "lstm", "nlstm")


def tiny_memory(offset: int) -> dict:
    """A memory profile in the evaluation's format, with made-up shares that sum to 1."""
    shares = [0.3 - 0.05 * offset, 0.2, 0.15, 0.1, 0.1, 0.05 + 0.05 * offset, 0.05, 0.03, 0.02]
    profile = {"by_distance": shares, "before_word": 0.25 - 0.05 * offset, "reach_10": sum(shares[5:])}
    return {
        "buckets": buckets_description(),
        "test": {"rows": 2000, **profile, "sample": {"seed": 0, "sequences": 12, "positions": 2000}},
        "example": {"rows": 198, **profile},
    }


def tiny_metrics(configs: dict[str, ModelConfig], nets: dict[str, AutocompleteNet]) -> dict:
    """A metrics.json in the training pipeline's format, with made-up numbers."""
    models = {}
    for unit, config in configs.items():
        models[unit] = {
            "preset": "tiny",
            "unit": unit,
            "name": get_unit(unit).display_name,
            "config": config.to_dict(),
            "parameters": nets[unit].parameter_counts(),
            "corpus": {"name": "random", "sha256": "0" * 64},
            "characters_seen": 1000,
            "training_seconds": 1.5,
            "steps": 10,
            "test": {"cross_entropy": 3.5 + UNITS.index(unit) / 10, "accuracy": 0.25 - UNITS.index(unit) / 100},
            # The third point has too few words behind it for the accuracy figure to draw it.
            "accuracy_by_letters_known": {
                "top1": [0.1, 0.2, 0.9], "top2": [0.2, 0.3, 0.9], "top3": [0.3, 0.4, 0.9], "count": [900, 400, 50],
                # The paper's count: every character, a word outside the vocabulary a miss.
                "every_character": {"top1": [0.09, 0.18, 0.8], "top2": [0.18, 0.27, 0.8], "top3": [0.27, 0.36, 0.8], "count": [1000, 450, 60]},
            },
            "memory": tiny_memory(UNITS.index(unit)),
            "training_curve": [{"step": 10, "seconds": 1.5, "characters": 1000, "train_loss": 3.6, "valid_loss": None}],
            "history": [
                {"characters": 500, "accuracy": 0.2 - UNITS.index(unit) / 100, "accuracy_every_character": 0.18 - UNITS.index(unit) / 100,
                 "example_reach_10": 0.01},
                {"characters": 1000, "accuracy": 0.25 - UNITS.index(unit) / 100, "accuracy_every_character": 0.23 - UNITS.index(unit) / 100,
                 "example_reach_10": 0.02 + UNITS.index(unit) / 100},
            ],
        }
    return {"models": models}


def write_tiny_checkpoints(directory: Path, hidden_size: int = TINY_HIDDEN, seed: int = 0) -> Path:
    """gru/lstm/nlstm random-weight checkpoints, vocab.json and metrics.json in `directory`."""
    torch.manual_seed(seed)
    vocabulary = Vocabulary(SPECIAL_WORDS + TINY_WORDS)
    configs, nets = {}, {}
    for unit in UNITS:
        configs[unit] = ModelConfig(
            unit=unit, hidden_size=hidden_size, num_layers=TINY_LAYERS[unit], depth=2 if unit == "nlstm" else 1, num_words=len(vocabulary)
        )
        nets[unit] = AutocompleteNet(configs[unit])
        # Random embeddings are small; scale them up so connectivity values are far from round-off.
        with torch.no_grad():
            nets[unit].embedding.weight.mul_(0.5)
        save_checkpoint(nets[unit], directory / f"{unit}.safetensors")
    vocabulary.save(directory / "vocab.json")
    (directory / "metrics.json").write_text(json.dumps(tiny_metrics(configs, nets)))
    return directory


@pytest.fixture(scope="session")
def tiny_checkpoint_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with tiny GRU, LSTM and Nested LSTM checkpoints, vocab.json and metrics.json."""
    return write_tiny_checkpoints(tmp_path_factory.mktemp("tiny_checkpoints"))


def bundled_checkpoints_present() -> bool:
    return all((BUNDLED_CHECKPOINTS / f"{unit}.safetensors").is_file() for unit in UNITS) and (BUNDLED_CHECKPOINTS / "vocab.json").is_file()


@contextmanager
def serve_app(checkpoint_dir: Path, **settings: object) -> Iterator[str]:
    """Run the app under a real uvicorn server on a free loopback port; yields its base URL."""
    port = free_port()
    app = create_app(Settings(checkpoint_dir=checkpoint_dir, host="127.0.0.1", port=port, **settings))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start serving {checkpoint_dir}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def live_server(tiny_checkpoint_dir: Path) -> Iterator[str]:
    """Base URL of a real uvicorn server serving the tiny checkpoints."""
    with serve_app(tiny_checkpoint_dir) as url:
        httpx.get(f"{url}/healthz", timeout=10).raise_for_status()
        yield url


@pytest.fixture(scope="session")
def tiny_client(tiny_checkpoint_dir: Path) -> Iterator[TestClient]:
    """The app on the tiny checkpoints, called in-process through its ASGI interface."""
    with TestClient(create_app(Settings(checkpoint_dir=tiny_checkpoint_dir))) as client:
        yield client


@pytest.fixture(scope="session")
def bundled_client() -> Iterator[TestClient]:
    """The app on the bundled checkpoints; skips the test while they are not there."""
    if not bundled_checkpoints_present():
        pytest.skip(f"bundled checkpoints not present in {BUNDLED_CHECKPOINTS}")
    with TestClient(create_app(Settings(checkpoint_dir=BUNDLED_CHECKPOINTS))) as client:
        yield client


@pytest.fixture(scope="module", params=["gru", "lstm", "nlstm"])
def tiny_net(request: pytest.FixtureRequest, tiny_checkpoint_dir: Path) -> AutocompleteNet:
    """Each of the tiny checkpoints in turn: the units that have hand-written connectivity sweeps."""
    return load_checkpoint(tiny_checkpoint_dir / f"{request.param}.safetensors")
