"""The app under a real uvicorn server, start-up configuration and checkpoint safety."""

import gc
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from safetensors import safe_open
from safetensors.torch import save_file

from app.main import create_app
from app.settings import PROJECT_ROOT, Settings, SettingsError, load_settings
from models.checkpoint import CheckpointError


def test_live_server_over_http(live_server: str) -> None:
    with httpx.Client(base_url=live_server, timeout=30) as client:
        assert client.get("/healthz").json()["models"] == ["gru", "lstm", "nlstm"]
        typed = client.post("/api/autocomplete", json={"text": "the d", "positions": "last", "top_k": 2})
        assert typed.status_code == 200 and typed.json()["text"] == " the d"
        row = client.post("/api/connectivity", json={"text": "the dog", "model": "lstm", "method": "gradient_x_input"}).json()["rows"][0]
        assert row["position"] == 7 and len(row["connectivity"]) == 8
        refused = client.post("/api/autocomplete", content=b"{", headers={"content-type": "application/json"})
        assert refused.status_code == 422
        assert "default-src 'self'" in refused.headers["content-security-policy"]
        assert client.post("/api/autocomplete", content=b"a" * 100_000).status_code == 413



def test_what_start_up_made_is_frozen_while_the_server_runs(tiny_checkpoint_dir: Path) -> None:
    """Garbage collections skip the models (gc.freeze) while the app serves, and see them again once it has stopped."""
    with TestClient(create_app(Settings(checkpoint_dir=tiny_checkpoint_dir))) as client:
        registry = client.app.state.engine.registry
        assert gc.get_freeze_count() > 0
        assert not any(tracked is registry for tracked in gc.get_objects())
        assert client.get("/api/models").status_code == 200
    assert gc.get_freeze_count() == 0
    assert any(tracked is registry for tracked in gc.get_objects())

def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RNN_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("RNN_PORT", "9001")
    monkeypatch.setenv("RNN_THREADS", "1")
    settings = load_settings()
    assert (settings.checkpoint_dir, settings.port, settings.threads) == (tmp_path, 9001, 1)


def test_default_settings_serve_the_bundled_checkpoints() -> None:
    settings = Settings()
    assert settings.checkpoint_dir == PROJECT_ROOT / "models" / "checkpoints"
    assert settings.max_text_chars == 1000 and settings.integrated_gradients_steps >= 32


@pytest.mark.parametrize(
    "variable,value",
    [("RNN_PORT", "eighty"), ("RNN_PORT", "70000"), ("RNN_THREADS", "0"), ("RNN_INTEGRATED_GRADIENTS_STEPS", "8"), ("RNN_LOG_LEVEL", "loud")],
)
def test_invalid_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_python_m_app_refuses_invalid_configuration() -> None:
    environment = {**os.environ, "RNN_PORT": "not-a-port"}
    result = subprocess.run([sys.executable, "-m", "app"], cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "RNN_PORT" in result.stderr


def copy_checkpoints(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def truncate(directory: Path) -> Path:
    path = directory / "lstm.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def corrupt_header(directory: Path) -> Path:
    path = directory / "gru.safetensors"
    data = bytearray(path.read_bytes())
    data[8:40] = b"\x00" * 32
    path.write_bytes(bytes(data))
    return path


def remove_vocabulary(directory: Path) -> Path:
    path = directory / "vocab.json"
    path.unlink()
    return path


def mismatch_shapes(directory: Path) -> Path:
    path = directory / "nlstm.safetensors"
    with safe_open(str(path), framework="pt") as file:
        metadata = file.metadata()
        tensors = {name: file.get_tensor(name) for name in file.keys()}
    config = json.loads(metadata["config"])
    config["hidden_size"] *= 2
    save_file(tensors, str(path), metadata={**metadata, "config": json.dumps(config)})
    return path


def shrink_vocabulary(directory: Path) -> Path:
    path = directory / "vocab.json"
    data = json.loads(path.read_text())
    data["words"] = data["words"][:-3]
    path.write_text(json.dumps(data))
    return directory / "gru.safetensors"


@pytest.mark.parametrize("damage", [truncate, corrupt_header, remove_vocabulary, mismatch_shapes, shrink_vocabulary])
def test_damaged_checkpoints_stop_start_up(tiny_checkpoint_dir: Path, tmp_path: Path, damage) -> None:
    directory = copy_checkpoints(tiny_checkpoint_dir, tmp_path / "checkpoints")
    named = damage(directory)
    app = create_app(Settings(checkpoint_dir=directory))
    with pytest.raises(CheckpointError, match=str(named)):
        with TestClient(app):
            pass
    assert not hasattr(app.state, "engine"), "a failed start-up must not leave a half-loaded engine"


def test_empty_or_missing_directory_stops_start_up(tmp_path: Path) -> None:
    for directory in (tmp_path, tmp_path / "absent"):
        with pytest.raises(CheckpointError, match=str(directory)):
            with TestClient(create_app(Settings(checkpoint_dir=directory))):
                pass


def test_uvicorn_exits_on_a_damaged_checkpoint(tiny_checkpoint_dir: Path, tmp_path: Path) -> None:
    directory = copy_checkpoints(tiny_checkpoint_dir, tmp_path / "checkpoints")
    named = truncate(directory)
    environment = {**os.environ, "RNN_CHECKPOINT_DIR": str(directory), "RNN_PORT": "1"}
    result = subprocess.run([sys.executable, "-m", "app"], cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert str(named) in result.stderr


def test_the_server_ticks_once_a_second_and_refreshes_the_date_header_each_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    import uvicorn

    import app.__main__ as entry

    server = entry.Server(uvicorn.Config(create_app))
    ticks: list[int] = []
    sleeps: list[float] = []

    async def on_tick(counter: int) -> bool:
        ticks.append(counter)
        return len(ticks) == 3  # then a stop request

    test_thread = threading.get_ident()
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        # asyncio.sleep is patched process-wide: the session's live server, in its own thread, keeps its real one.
        if threading.get_ident() != test_thread:
            return await real_sleep(seconds)
        sleeps.append(seconds)

    monkeypatch.setattr(server, "on_tick", on_tick)
    monkeypatch.setattr(entry.asyncio, "sleep", sleep)
    asyncio.run(server.main_loop())
    assert ticks == [0, 10, 20]  # uvicorn refreshes the Date header when the counter is a multiple of 10
    assert sleeps == [1.0, 1.0]
