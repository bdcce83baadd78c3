"""Many readers at once, over texts that share prefixes, each get the answer their request gets alone.

A real uvicorn server with several inference threads, so keystrokes of different
readers really do run at the same time and resume from each other's cached states.
"""

import math
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import serve_app

# Lowercase letters and single spaces only, so every typed prefix normalises to a prefix of the full text.
SENTENCES = (
    "the cat sat on the mat",
    "the cat sang to the dog",
    "the car was new",
    "then the dog sat",
    "the cab",
    "there were people in the city",
)
READERS_PER_SENTENCE = 3
HOVERS_PER_READER = 4
MODELS = ("gru", "lstm", "nlstm")
TOP_K = 5


@dataclass(frozen=True)
class Hover:
    text: str
    model: str
    position: int

    def body(self) -> dict:
        return {"text": self.text, "model": self.model, "positions": [self.position]}


@pytest.fixture(scope="module")
def concurrent_server(tiny_checkpoint_dir: Path) -> Iterator[str]:
    # Four inference threads of one PyTorch thread each: requests overlap inside the engine itself.
    with serve_app(tiny_checkpoint_dir, workers=4, threads=1) as url:
        yield url


def reader_script(sentence: str, seed: int) -> list[str | Hover]:
    """A reader typing `sentence` one character at a time and hovering over a few earlier characters."""
    rng = random.Random(seed)
    steps: list[str | Hover] = [sentence[:length] for length in range(1, len(sentence) + 1)]
    for _ in range(HOVERS_PER_READER):
        length = rng.randrange(2, len(sentence) + 1)
        # The normalised text has a leading space, so its positions run 0..length.
        hover = Hover(sentence[:length], rng.choice(MODELS), rng.randrange(0, length + 1))
        steps.insert(rng.randrange(length, len(steps) + 1), hover)
    return steps


def assert_same_suggestions(answer: dict, expected: dict) -> None:
    assert answer["position"] == expected["position"]
    assert answer["char"] == expected["char"]
    assert [s["word"] for s in answer["suggestions"]] == [s["word"] for s in expected["suggestions"]]
    for mine, theirs in zip(answer["suggestions"], expected["suggestions"]):
        assert math.isclose(mine["probability"], theirs["probability"], rel_tol=1e-5, abs_tol=1e-7)


def test_interleaved_readers_get_single_request_answers(concurrent_server: str) -> None:
    scripts = [
        reader_script(sentence, seed=index * READERS_PER_SENTENCE + copy)
        for index, sentence in enumerate(SENTENCES)
        for copy in range(READERS_PER_SENTENCE)
    ]
    with httpx.Client(base_url=concurrent_server, timeout=60) as client:
        # Single-request answers, one at a time: every position of each full sentence, recomputed from
        # scratch (positions "all" never starts from a cached state), and each hover row alone.
        full_rows = {}
        for sentence in SENTENCES:
            response = client.post("/api/autocomplete", json={"text": sentence, "top_k": TOP_K, "positions": "all"})
            full_rows[sentence] = response.json()["models"]
        hovers = {step for script in scripts for step in script if isinstance(step, Hover)}
        expected_rows = {hover: client.post("/api/connectivity", json=hover.body()).json()["rows"] for hover in hovers}

        def run(script: list[str | Hover]) -> list[tuple[str | Hover, httpx.Response]]:
            answers = []
            for step in script:
                if isinstance(step, Hover):
                    answers.append((step, client.post("/api/connectivity", json=step.body())))
                else:
                    body = {"text": step, "top_k": TOP_K, "positions": "last"}
                    answers.append((step, client.post("/api/autocomplete", json=body)))
            return answers

        with ThreadPoolExecutor(max_workers=len(scripts)) as executor:
            results = list(executor.map(run, scripts))

    checked_keystrokes = checked_hovers = 0
    for script, answers in zip(scripts, results):
        sentence = next(step for step in reversed(script) if isinstance(step, str))
        for step, response in answers:
            assert response.status_code == 200, response.text
            if isinstance(step, Hover):
                (row,) = response.json()["rows"]
                (expected,) = expected_rows[step]
                assert row["position"] == expected["position"] and row["word"] == expected["word"]
                assert row["connectivity"] == pytest.approx(expected["connectivity"], rel=1e-5, abs=1e-9)
                checked_hovers += 1
            else:
                answer = response.json()
                assert answer["text"] == " " + step
                for model in MODELS:
                    (row,) = answer["models"][model]
                    assert_same_suggestions(row, full_rows[sentence][model][len(step)])
                checked_keystrokes += 1
    assert checked_keystrokes == sum(len(sentence) for sentence in SENTENCES) * READERS_PER_SENTENCE
    assert checked_hovers == len(SENTENCES) * READERS_PER_SENTENCE * HOVERS_PER_READER
