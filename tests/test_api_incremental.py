"""The keystroke path: cached recurrent states give the same answers as recomputing from scratch."""

import json
import math
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from fastapi.testclient import TestClient
from torch import nn

from app import engine as engine_module
from app.caches import ResumePoint, StateCache
from app.engine import InferenceEngine
from app.main import create_app
from app.registry import load_registry
from app.settings import Settings
from models.checkpoint import save_checkpoint
from models.net import AutocompleteNet, ModelConfig
from models.text import normalise
from models.units import Unit, register_unit, unregister_unit

SENTENCE = "The cat sat on the mat and then"
# (position to edit, text inserted): edits in the middle, a deletion, and text pasted at the end.
EDITS = [(8, "dog "), (4, ""), (20, "zz"), (None, " and the dog sat too")]


def typing_session() -> list[str]:
    """Texts a reader sends: one character at a time, then edits in the middle, then backspaces."""
    texts = [SENTENCE[:length] for length in range(1, len(SENTENCE) + 1)]
    current = SENTENCE
    for position, inserted in EDITS:
        if position is None:
            current = current + inserted
        elif inserted:
            current = current[:position] + inserted + current[position:]
        else:
            current = current[:position] + current[position + 1 :]
        texts.append(current)
    texts += [current[:length] for length in range(len(current) - 1, len(current) - 6, -1)]
    return [text for text in texts if normalise(text)]


@pytest.fixture(scope="module")
def engines(tiny_checkpoint_dir) -> tuple[InferenceEngine, InferenceEngine]:
    registry = load_registry(tiny_checkpoint_dir)
    cached = InferenceEngine(registry, state_cache_size=1000, integrated_gradients_steps=32, max_connectivity_work=100_000)
    uncached = InferenceEngine(registry, state_cache_size=0, integrated_gradients_steps=32, max_connectivity_work=100_000)
    return cached, uncached


def assert_same_suggestions(incremental, recomputed) -> None:
    assert [s.word for s in incremental.suggestions] == [s.word for s in recomputed.suggestions]
    for mine, theirs in zip(incremental.suggestions, recomputed.suggestions):
        assert math.isclose(mine.probability, theirs.probability, rel_tol=1e-5, abs_tol=1e-7)


@pytest.mark.parametrize("model_id", ["gru", "lstm", "nlstm"])
def test_incremental_equals_full_recompute(engines, model_id: str) -> None:
    cached, uncached = engines
    hits = 0
    for raw in typing_session():
        text = normalise(raw)
        hits += cached.cache.longest_prefix(model_id, text)[0] > 0
        (incremental,) = cached.suggest(model_id, text, top_k=10, positions="last")
        full = uncached.suggest(model_id, text, top_k=10, positions="all")
        assert len(full) == len(text)
        assert incremental.position == full[-1].position == len(text) - 1
        assert_same_suggestions(incremental, full[-1])
    # Every text but the first resumes from a cached prefix.
    assert hits == len(typing_session()) - 1


def test_cached_recordings_give_the_uncached_rows(tiny_checkpoint_dir) -> None:
    registry = load_registry(tiny_checkpoint_dir)
    cached = InferenceEngine(registry, 0, 32, 100_000, recording_cache_size=2)
    uncached = InferenceEngine(registry, 0, 32, 100_000, recording_cache_size=0)
    text = normalise("the cat sat on the mat")
    for model_id, positions, word, method in [
        ("gru", [5], None, "gradient"),
        ("gru", [9, 2], "the", "gradient_x_input"),
        ("lstm", None, None, "gradient"),
        ("gru", None, "cat", "gradient"),
        ("nlstm", [3], None, "integrated_gradients"),
    ]:
        assert cached.connectivity(model_id, text, positions, word, method) == uncached.connectivity(model_id, text, positions, word, method)
    assert len(cached.recordings) == 2 and len(uncached.recordings) == 0


def test_a_recording_serves_every_earlier_position(tiny_checkpoint_dir) -> None:
    registry = load_registry(tiny_checkpoint_dir)
    cached = InferenceEngine(registry, 0, 32, 100_000, recording_cache_size=4)
    uncached = InferenceEngine(registry, 0, 32, 100_000, recording_cache_size=0)
    text = normalise("the cat sat on the mat")
    for positions in ([12], [3, 7], [12], [len(text) - 1], [0, 20]):
        rows = cached.connectivity("lstm", text, positions, None, "gradient")
        assert rows == uncached.connectivity("lstm", text, positions, None, "gradient")
        assert all(len(row.connectivity) == row.position + 1 for row in rows)
    # Position 12 was recorded first; the last position needed a longer recording, which then served position 20.
    assert [len(key[1]) for key in cached.recordings._entries] == [13, len(text)]


def test_a_counterfactual_records_each_text_once_with_or_without_a_recording_cache(tiny_checkpoint_dir, monkeypatch) -> None:
    registry = load_registry(tiny_checkpoint_dir)
    cached = InferenceEngine(registry, 0, 32, 100_000, recording_cache_size=4)
    uncached = InferenceEngine(registry, 0, 32, 100_000, recording_cache_size=0)
    calls: list[str] = []
    for name in ("record", "record_continuing"):
        original = getattr(engine_module, name)
        monkeypatch.setattr(engine_module, name, lambda *args, name=name, original=original: calls.append(name) or original(*args))
    text, edited = normalise("the cat sat on the mat"), normalise("the dog sat on the mat")
    answers = []
    for engine in (cached, uncached):
        calls.clear()
        answers.append(engine.counterfactual("gru", text, len(text) - 1, edited, len(edited) - 1, None, "gradient", 3, 6))
        # The original text, then the edited one from where they part: neither recorded twice.
        assert calls == ["record", "record_continuing"]
    assert answers[0] == answers[1]


def test_cache_is_bounded_lru() -> None:
    cache = StateCache(capacity=2)
    for text in (" a", " ab", " abc"):
        cache.put(("gru", text), ResumePoint(torch.full((1, 1, 2), float(len(text))), torch.full((2,), -float(len(text)))))
    assert len(cache) == 2
    assert cache.longest_prefix("gru", " ab")[0] == 3
    assert cache.longest_prefix("gru", " a")[0] == 0
    length, point = cache.longest_prefix("gru", " abcd")
    assert length == 4 and point.state.flatten().tolist() == [4.0, 4.0] and point.last_output.tolist() == [-4.0, -4.0]
    assert cache.longest_prefix("lstm", " abcd") == (0, None)
    assert StateCache(capacity=0).longest_prefix("gru", " a") == (0, None)


def test_the_cache_is_bounded_in_bytes_too() -> None:
    """Three 4 kB states fit in 10 kB of cache, a fourth pushes out the least recently used; one larger than it all is not kept."""
    cache = StateCache(capacity=100, max_bytes=10_000)

    def point(size: int) -> ResumePoint:
        return ResumePoint((torch.zeros(size // 4 - 4), torch.zeros(2)), torch.zeros(2))

    for text in (" a", " ab"):
        cache.put(("mlstm", text), point(4000))
    assert cache.bytes == 8000 and len(cache) == 2
    cache.get(("mlstm", " a"))
    cache.put(("mlstm", " abc"), point(4000))
    assert len(cache) == 2 and cache.get(("mlstm", " ab")) is None and cache.get(("mlstm", " a")) is not None
    cache.put(("mlstm", " abc"), point(2000))  # the same key again: counted once
    assert cache.bytes == 6000
    cache.put(("mlstm", " abcd"), point(20_000))
    assert len(cache) == 0 and cache.bytes == 0


def test_the_cache_keeps_its_own_copies_of_tensor_and_tuple_states() -> None:
    cache = StateCache(capacity=4)
    for key, state in ((("gru", " a"), torch.zeros(2, 1, 3)), (("lstm", " a"), (torch.zeros(2, 1, 3), torch.zeros(2, 1, 3)))):
        output = torch.zeros(5, 3)
        cache.put(key, ResumePoint(state, output[-1]))
        for part in state if isinstance(state, tuple) else (state,):
            part.fill_(1.0)
        output.fill_(1.0)
        point = cache.get(key)
        stored = point.state if isinstance(point.state, tuple) else (point.state,)
        assert all(part.eq(0).all() for part in stored) and point.last_output.eq(0).all()
        assert isinstance(point.state, tuple) == isinstance(state, tuple)
        # Only the last row is kept, not the whole text's outputs it was a view of.
        assert point.last_output.untyped_storage().nbytes() == 3 * 4


def test_concurrent_requests_sharing_prefixes(tiny_client: TestClient) -> None:
    """Interleaved keystroke requests over shared prefixes each get the single-request answer."""
    texts = [prefix + suffix for prefix in ("the cat", "the cab", "then") for suffix in ("", " s", " sa", " sat", "s")]
    expected = {}
    for text in texts:
        body = {"text": text, "positions": "all", "top_k": 5}
        expected[text] = {model: rows[-1] for model, rows in tiny_client.post("/api/autocomplete", json=body).json()["models"].items()}

    def keystroke(text: str) -> tuple[str, dict]:
        response = tiny_client.post("/api/autocomplete", json={"text": text, "positions": "last", "top_k": 5})
        return text, response.json()["models"]

    with ThreadPoolExecutor(max_workers=8) as executor:
        answers = list(executor.map(keystroke, texts * 6))
    for text, models in answers:
        for model, (row,) in models.items():
            want = expected[text][model]
            assert [s["word"] for s in row["suggestions"]] == [s["word"] for s in want["suggestions"]]
            for mine, theirs in zip(row["suggestions"], want["suggestions"]):
                assert math.isclose(mine["probability"], theirs["probability"], rel_tol=1e-5)


class StepCountingGRU(nn.Module):
    """A toy plug-in unit: a GRU cell whose state is (steps seen [batch, 1], h [batch, hidden]), a layout unlike any built-in
    unit's, and whose output mixes in the step count, so it is not h itself."""

    def __init__(self, hidden_size: int, num_layers: int, depth: int) -> None:
        super().__init__()
        self.cell = nn.GRUCell(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, tuple]:
        if state is None:
            state = (x.new_zeros(x.shape[0], 1), x.new_zeros(x.shape[0], self.cell.hidden_size))
        steps, h = state
        outputs = []
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
            steps = steps + 1
            outputs.append(torch.tanh(h + steps / 10))
        return torch.stack(outputs, dim=1), (steps, h)


TOY_DIAGRAM = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><circle cx="5" cy="5" r="4"/></svg>'
TOY_UNIT = Unit("toy-counter", "Step-counting GRU", "A GRU cell that also counts its steps; registered by the tests.",
                StepCountingGRU, default_layers=1, diagram=TOY_DIAGRAM)


@pytest.fixture
def toy_unit_checkpoints(tmp_path, tiny_checkpoint_dir):
    """A checkpoint folder with the tiny GRU and a model of the toy unit, registered for the test's duration."""
    register_unit(TOY_UNIT)
    try:
        for name in ("gru.safetensors", "vocab.json"):
            shutil.copy(tiny_checkpoint_dir / name, tmp_path / name)
        torch.manual_seed(0)
        vocabulary_size = len(json.loads((tmp_path / "vocab.json").read_text())["words"])
        net = AutocompleteNet(ModelConfig(unit=TOY_UNIT.name, hidden_size=16, num_layers=1, num_words=vocabulary_size))
        save_checkpoint(net, tmp_path / "counter.safetensors")
        yield tmp_path
    finally:
        unregister_unit(TOY_UNIT.name)


def test_a_plug_in_unit_is_served_and_typed_into_incrementally(toy_unit_checkpoints) -> None:
    # Article warming asks for connectivity too, which is not what this test is about; no answer cache, so every question reaches the engine.
    settings = Settings(checkpoint_dir=toy_unit_checkpoints, warm_article=False, response_cache_bytes=0)
    with TestClient(create_app(settings)) as client:
        models = client.get("/api/models").json()
        assert [model["id"] for model in models] == ["gru", "counter"]
        counter = models[1]
        assert (counter["unit"], counter["name"], counter["description"]) == (TOY_UNIT.name, TOY_UNIT.display_name, TOY_UNIT.description)
        assert counter["diagram"] == TOY_UNIT.diagram and counter["vocabulary_size"] == models[0]["vocabulary_size"]

        def suggestions(raw: str, positions: str) -> list[dict]:
            body = {"text": raw, "models": ["counter"], "positions": positions, "top_k": 5}
            return client.post("/api/autocomplete", json=body).json()["models"]["counter"]

        engine = client.app.state.engine
        resumed = 0
        for raw in typing_session():
            text = normalise(raw)
            resumed += engine.cache.longest_prefix("counter", text)[0] > 0
            # From a cached prefix's state; then all positions (which caches the whole text's state); then from that state alone.
            (from_prefix,) = suggestions(raw, "last")
            full = suggestions(raw, "all")
            assert engine.cache.longest_prefix("counter", text)[0] == len(text)
            (from_whole_text,) = suggestions(raw, "last")
            for incremental in (from_prefix, from_whole_text):
                assert incremental["position"] == full[-1]["position"] == len(text) - 1
                assert [s["word"] for s in incremental["suggestions"]] == [s["word"] for s in full[-1]["suggestions"]]
                for mine, theirs in zip(incremental["suggestions"], full[-1]["suggestions"]):
                    assert math.isclose(mine["probability"], theirs["probability"], rel_tol=1e-5, abs_tol=1e-7)
        # Every text but the first resumed from a cached state of the toy unit.
        assert resumed == len(typing_session()) - 1
