"""The keystroke path: cached recurrent states give the same answers as recomputing from scratch."""

import math
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from fastapi.testclient import TestClient

from app.caches import StateCache
from app.engine import InferenceEngine
from app.registry import load_registry
from models.text import normalise

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


def test_cache_is_bounded_lru() -> None:
    cache = StateCache(capacity=2)
    for text in (" a", " ab", " abc"):
        cache.put(("gru", text), torch.full((1, 1, 2), float(len(text))))
    assert len(cache) == 2
    assert cache.longest_prefix("gru", " ab")[0] == 3
    assert cache.longest_prefix("gru", " a")[0] == 0
    length, state = cache.longest_prefix("gru", " abcd")
    assert length == 4 and state.flatten().tolist() == [4.0, 4.0]
    assert cache.longest_prefix("lstm", " abcd") == (0, None)
    assert StateCache(capacity=0).longest_prefix("gru", " a") == (0, None)


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
