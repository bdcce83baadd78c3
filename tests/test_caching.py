"""Answers computed once: cached bytes equal fresh ones, new models never get old answers, the cache is bounded in bytes,
HTTP validators and compression behave as RFC 9110 says, and the GET forms answer as the POST forms do."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import torch
from conftest import tiny_memory, write_tiny_checkpoints
from fastapi.testclient import TestClient
from processes import free_port
from starlette.applications import Starlette
from starlette.routing import Mount

from app.answers import Answer, AnswerCache, Answers
from app.engine import InferenceEngine
from app.http import CachedStaticFiles
from app.main import DEMO_DATA, PAPER_DATA, article_texts, create_app
from app.pool import InferencePool
from app.registry import load_registry
from app.settings import PROJECT_ROOT, Settings

PAPER = json.loads(PAPER_DATA.read_text())
EXAMPLE_TEXT = PAPER["connectivity"]["example_text"]
QUESTION = {"text": "the cat sat on the mat", "model": "lstm", "positions": "all"}
UNITS = ["gru", "lstm", "nlstm"]


def fresh_client(checkpoints: Path, **settings: object) -> TestClient:
    return TestClient(create_app(Settings(checkpoint_dir=checkpoints, **settings)))


def test_a_cached_answer_is_the_fresh_answer_byte_for_byte(tiny_client: TestClient, tiny_checkpoint_dir: Path) -> None:
    first = tiny_client.post("/api/connectivity", json=QUESTION)
    again = tiny_client.post("/api/connectivity", json=QUESTION)
    with fresh_client(tiny_checkpoint_dir, response_cache_bytes=0, warm_article=False) as uncached:
        fresh = uncached.post("/api/connectivity", json=QUESTION)
        fresh_suggestions = uncached.post("/api/autocomplete", json={"text": EXAMPLE_TEXT})
    assert first.status_code == again.status_code == fresh.status_code == 200
    assert first.content == again.content == fresh.content
    assert first.headers["etag"] == again.headers["etag"] == fresh.headers["etag"]
    # The example text's suggestions were computed at start-up and kept: the same bytes as computing them now.
    assert tiny_client.post("/api/autocomplete", json={"text": EXAMPLE_TEXT}).content == fresh_suggestions.content


def test_the_get_form_answers_with_the_same_bytes_as_the_post_form(tiny_client: TestClient) -> None:
    posted = tiny_client.post("/api/connectivity", json={**QUESTION, "positions": [3, 9]})
    got = tiny_client.get("/api/connectivity", params={**QUESTION, "positions": "3,9"})
    assert got.status_code == 200 and got.content == posted.content
    suggested = tiny_client.post("/api/autocomplete", json={"text": "the ca", "models": ["gru", "lstm"], "positions": "last"})
    asked = tiny_client.get("/api/autocomplete", params={"text": "the ca", "models": "gru,lstm", "positions": "last"})
    assert asked.status_code == 200 and asked.content == suggested.content


def test_versioned_urls_are_immutable_and_older_versions_are_redirected(tiny_client: TestClient) -> None:
    version = tiny_client.get("/api/models").headers["x-answers-version"]
    unversioned = tiny_client.get("/api/connectivity", params=QUESTION)
    assert unversioned.headers["cache-control"] == "public, no-cache"
    versioned = tiny_client.get("/api/connectivity", params={**QUESTION, "v": version})
    assert "immutable" in versioned.headers["cache-control"] and versioned.content == unversioned.content
    stale = tiny_client.get("/api/connectivity", params={**QUESTION, "v": "0" * 16}, follow_redirects=False)
    assert stale.status_code == 307 and stale.headers["cache-control"] == "no-store"
    assert f"v={version}" in stale.headers["location"] and "model=lstm" in stale.headers["location"]


def test_if_none_match_gets_304_on_get_and_412_on_post(tiny_client: TestClient) -> None:
    answer = tiny_client.get("/api/connectivity", params=QUESTION)
    etag = answer.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    for validator in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        revalidated = tiny_client.get("/api/connectivity", params=QUESTION, headers={"If-None-Match": validator})
        assert revalidated.status_code == 304 and revalidated.content == b"" and revalidated.headers["etag"] == etag
    assert tiny_client.get("/api/connectivity", params=QUESTION, headers={"If-None-Match": '"other"'}).status_code == 200
    # RFC 9110 13.1.2: any other method gets 412 when the condition fails.
    assert tiny_client.post("/api/connectivity", json=QUESTION, headers={"If-None-Match": etag}).status_code == 412
    models = tiny_client.get("/api/models")
    assert tiny_client.get("/api/models", headers={"If-None-Match": models.headers["etag"]}).status_code == 304
    page = tiny_client.get("/")
    assert tiny_client.get("/", headers={"If-None-Match": page.headers["etag"]}).status_code == 304


def test_text_answers_are_gzipped_for_clients_that_accept_it(tiny_client: TestClient) -> None:
    question = {**QUESTION, "text": EXAMPLE_TEXT}
    plain = tiny_client.post("/api/connectivity", json=question, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.headers["vary"] == "Accept-Encoding"
    with httpx.Client(transport=tiny_client._transport, base_url="http://testserver") as raw:
        for accept in ("gzip", "br;q=1.0, gzip;q=0.8", "*"):
            zipped = raw.post("/api/connectivity", json=question, headers={"Accept-Encoding": accept})
            assert zipped.headers["content-encoding"] == "gzip"
            # httpx decodes it: the same bytes as the identity answer, in far fewer on the wire.
            assert zipped.content == plain.content
            assert int(zipped.headers["content-length"]) < len(plain.content) / 3
        refused = raw.post("/api/connectivity", json=question, headers={"Accept-Encoding": "gzip;q=0"})
        assert "content-encoding" not in refused.headers


def test_rows_stop_at_their_position_and_carry_the_asked_precision(tiny_client: TestClient, tiny_checkpoint_dir: Path) -> None:
    rows = tiny_client.post("/api/connectivity", json=QUESTION).json()["rows"]
    assert [len(row["connectivity"]) for row in rows] == [row["position"] + 1 for row in rows]
    values = [value for row in rows for value in row["connectivity"]]
    assert all(value == float(f"{value:.4g}") for value in values)
    assert any(value != float(f"{value:.3g}") for value in values)
    full = tiny_client.post("/api/connectivity", json={**QUESTION, "significant_digits": 9}).json()["rows"]
    registry = load_registry(tiny_checkpoint_dir)
    engine = InferenceEngine(registry, 0, 32, 100_000)
    text = tiny_client.post("/api/connectivity", json=QUESTION).json()["text"]
    # As many PyTorch threads as the server's inference threads use (an earlier app may have set another count):
    # a matrix product split over other threads sums in another order.
    torch.set_num_threads(tiny_client.app.state.settings.threads)
    exact = engine.connectivity("lstm", text, list(range(len(text))), None, "gradient")
    # 9 significant digits give back every float32 value as computed.

    for served, computed in zip(full, exact):
        assert torch.equal(torch.tensor(served["connectivity"], dtype=torch.float32), torch.tensor(computed.connectivity, dtype=torch.float32))
        assert [round(float(f"{value:.4g}"), 20) for value in computed.connectivity] == [
            round(value, 20) for value in next(row for row in rows if row["position"] == served["position"])["connectivity"]
        ]
    refused = tiny_client.post("/api/connectivity", json={**QUESTION, "significant_digits": 10})
    assert refused.status_code == 422 and "significant_digits" in str(refused.json()["detail"][0]["loc"])


def test_new_model_files_never_get_an_old_answer(tmp_path: Path) -> None:
    checkpoints = write_tiny_checkpoints(tmp_path / "checkpoints", seed=0)
    with fresh_client(checkpoints, warm_article=False) as before:
        old = before.get("/api/connectivity", params=QUESTION)
        old_version = before.get("/api/models").headers["x-answers-version"]
    # Retrained models replace the files in place.
    write_tiny_checkpoints(checkpoints, seed=1)
    with fresh_client(checkpoints, warm_article=False) as after:
        new_version = after.get("/api/models").headers["x-answers-version"]
        assert new_version != old_version
        revalidated = after.get("/api/connectivity", params=QUESTION, headers={"If-None-Match": old.headers["etag"]})
        assert revalidated.status_code == 200 and revalidated.headers["etag"] != old.headers["etag"]
        assert revalidated.content != old.content
        stale = after.get("/api/connectivity", params={**QUESTION, "v": old_version}, follow_redirects=False)
        assert stale.status_code == 307 and f"v={new_version}" in stale.headers["location"]


def test_one_cache_shared_by_two_model_sets_keeps_their_answers_apart(tmp_path: Path) -> None:
    first = load_registry(write_tiny_checkpoints(tmp_path / "first", seed=0))
    second = load_registry(write_tiny_checkpoints(tmp_path / "second", seed=1))
    assert first.digest != second.digest
    assert load_registry(tmp_path / "first").digest == first.digest

    async def scenario() -> tuple[Answer, Answer]:
        settings = Settings(warm_article=False)
        cache = AnswerCache(10_000_000)
        pool = InferencePool(workers=1, threads=1, max_queued=10)
        try:
            answers = [Answers(InferenceEngine(registry, 0, 32, 100_000), pool, settings, cache) for registry in (first, second)]
            return tuple([await answer.connectivity(QUESTION["text"], "gru", "all", None, "gradient", 4) for answer in answers])
        finally:
            pool.shutdown()

    from_first, from_second = asyncio.run(scenario())
    assert from_first.body != from_second.body and from_first.etag != from_second.etag


def test_metrics_change_the_digest_too(tmp_path: Path) -> None:
    checkpoints = write_tiny_checkpoints(tmp_path / "checkpoints")
    digest = load_registry(checkpoints).digest
    metrics = json.loads((checkpoints / "metrics.json").read_text())
    metrics["models"]["gru"]["test"]["accuracy"] = 0.5
    (checkpoints / "metrics.json").write_text(json.dumps(metrics))
    assert load_registry(checkpoints).digest != digest


def answer_of(size: int, tag: str = "") -> Answer:
    return Answer(body=b"x" * size, gzipped=None, etag=f'"{tag}"')


def test_the_cache_is_bounded_in_bytes_and_forgets_the_least_recently_used() -> None:
    entry = answer_of(1000).size
    cache = AnswerCache(max_bytes=3 * entry)
    for key in "abc":
        cache.put(key, answer_of(1000, key))
    assert cache.get("a") is not None  # now the most recently used
    cache.put("d", answer_of(1000, "d"))
    assert cache.get("b") is None and all(cache.get(key) is not None for key in "acd")
    assert cache.bytes == 3 * entry <= cache.max_bytes
    cache.put("huge", answer_of(10 * entry))
    assert cache.get("huge") is None and cache.bytes <= cache.max_bytes
    cache.put("pinned", answer_of(1000, "pinned"), pinned=True)
    for index in range(20):
        cache.put(index, answer_of(1000))
    assert cache.get("pinned") is not None and cache.bytes <= cache.max_bytes
    assert AnswerCache(0).max_bytes == 0


def test_the_server_cache_stays_within_its_setting(tiny_checkpoint_dir: Path) -> None:
    with fresh_client(tiny_checkpoint_dir, response_cache_bytes=30_000, warm_article=False) as client:
        for index in range(40):
            assert client.post("/api/connectivity", json={**QUESTION, "text": f"the cat sat on mat number {index} " * 2}).status_code == 200
        cache = client.app.state.answers.cache
        assert 0 < cache.bytes <= 30_000 and len(cache) < 40


def test_the_article_texts_are_ready_before_the_first_reader(tiny_checkpoint_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = article_texts()
    assert texts is not None
    # The tiny models' vocabulary lacks the walkthrough's words: a note's row here is for "the", as the page would ask for it.
    the = EXAMPLE_TEXT.index(" the ") + 1
    monkeypatch.setattr("app.main.article_texts", lambda: replace(texts, walkthrough_rows=((the, "the"),)))
    with fresh_client(tiny_checkpoint_dir) as client:
        engine = client.app.state.engine

        def must_not_run(*args: object, **kwargs: object) -> None:
            raise AssertionError("computed again")

        engine.connectivity, engine.suggest = must_not_run, must_not_run
        for model in UNITS:
            answer = client.get("/api/connectivity", params={"text": EXAMPLE_TEXT, "model": model, "positions": "all", "method": "gradient"})
            assert answer.status_code == 200 and len(answer.json()["rows"]) == len(answer.json()["text"])
            note = {"text": EXAMPLE_TEXT, "model": model, "positions": [the], "word": "the", "method": "gradient", "significant_digits": 4}
            assert client.post("/api/connectivity", json=note).json()["rows"][0]["word"] == "the"
        assert client.get("/api/autocomplete", params={"text": EXAMPLE_TEXT, "models": ",".join(UNITS), "top_k": 3}).status_code == 200
        keystroke = {"text": texts.demo_prefix, "positions": "last", "top_k": 3, "models": UNITS}
        assert client.post("/api/autocomplete", json=keystroke).status_code == 200


def test_the_article_texts_are_those_the_page_asks_about() -> None:
    texts = article_texts()
    assert texts is not None and texts.example_text == EXAMPLE_TEXT
    # Figure 3 opens on the demo's prefix (static/data/demo.json), which app/demo_prefix.py chose; not on the paper's.
    assert texts.demo_prefix == json.loads(DEMO_DATA.read_text())["prefix"]
    # Each walkthrough note's position and the word being typed there, which its note's row is for.
    assert texts.walkthrough_rows == ((106, "learning"), (141, "schools"), (159, "grammar"))
    assert [EXAMPLE_TEXT[position - 1 : position + 1] for position, _ in texts.walkthrough_rows] == ["le", " s", " g"]


def test_readers_asking_the_same_question_at_once_share_one_computation(tiny_checkpoint_dir: Path) -> None:
    registry = load_registry(tiny_checkpoint_dir)
    engine = InferenceEngine(registry, 0, 32, 100_000)
    calls, original = [], engine.connectivity

    def counted(*args: object) -> object:
        calls.append(args)
        time.sleep(0.2)
        return original(*args)

    engine.connectivity = counted

    async def scenario() -> list[Answer]:
        pool = InferencePool(workers=2, threads=1, max_queued=20)
        try:
            answers = Answers(engine, pool, Settings(warm_article=False), AnswerCache(10_000_000))
            return await asyncio.gather(*(answers.connectivity("the cat", "gru", "all", None, "gradient", 4) for _ in range(8)))
        finally:
            pool.shutdown()

    results = asyncio.run(scenario())
    assert len(calls) == 1 and len({result.body for result in results}) == 1


def test_bad_get_questions_are_422_naming_the_query_field(tiny_client: TestClient) -> None:
    for params, field in [
        ({**QUESTION, "positions": "3;4"}, "positions"),
        ({**QUESTION, "positions": "99"}, "positions"),
        ({**QUESTION, "text": "?!"}, "text"),
        ({"text": "the", "models": "gru,,lstm"}, "models"),
        ({**QUESTION, "colour": "red"}, "colour"),
    ]:
        path = "/api/autocomplete" if "model" not in params else "/api/connectivity"
        response = tiny_client.get(path, params=params)
        assert response.status_code == 422, params
        detail = response.json()["detail"][0]
        assert detail["loc"][0] == "query" and field in detail["loc"], detail


def test_models_carry_their_memory_profile(tiny_client: TestClient, tmp_path: Path) -> None:
    models = tiny_client.get("/api/models").json()
    for index, model in enumerate(models):
        assert model["memory"] == tiny_memory(index)
    checkpoints = write_tiny_checkpoints(tmp_path / "checkpoints")
    metrics = json.loads((checkpoints / "metrics.json").read_text())
    del metrics["models"]["gru"]["memory"]
    metrics["models"]["lstm"]["memory"] = {"buckets": "not a list"}
    (checkpoints / "metrics.json").write_text(json.dumps(metrics))
    with fresh_client(checkpoints, warm_article=False) as client:
        memory = {model["id"]: model["memory"] for model in client.get("/api/models").json()}
    # Absent or not in the evaluation's format: null, and the server still starts.
    assert memory["gru"] is None and memory["lstm"] is None and memory["nlstm"] == tiny_memory(2)


def test_static_files_are_served_from_memory_compressed_and_follow_edits(tmp_path: Path) -> None:
    script = tmp_path / "figure.js"
    script.write_text("export const answer = 42;\n" * 200)
    (tmp_path / "logo.png").write_bytes(b"\x89PNG" + bytes(range(256)) * 8)
    app = Starlette(routes=[Mount("/static", CachedStaticFiles(directory=tmp_path, cache_control="public, no-cache"))])
    with TestClient(app) as client:
        first = client.get("/static/figure.js")
        assert first.status_code == 200 and first.content == script.read_bytes()
        assert first.headers["content-encoding"] == "gzip" and first.headers["content-type"].startswith("text/javascript")
        assert first.headers["cache-control"] == "public, no-cache"
        assert client.get("/static/figure.js", headers={"If-None-Match": first.headers["etag"]}).status_code == 304
        assert client.head("/static/figure.js").content == b""
        image = client.get("/static/logo.png")
        assert "content-encoding" not in image.headers and image.content == (tmp_path / "logo.png").read_bytes()
        script.write_text("export const answer = 43;\n")
        edited = client.get("/static/figure.js")
        assert edited.content == b"export const answer = 43;\n" and edited.headers["etag"] != first.headers["etag"]
        assert client.get("/static/missing.js").status_code == 404
        assert client.get("/static/../conftest.py").status_code == 404
        assert client.post("/static/figure.js").status_code == 405
        script.unlink()  # a path served before is only stat-ed again, and that notices a removal
        assert client.get("/static/figure.js").status_code == 404
        script.write_text("export const answer = 44;\n")
        assert client.get("/static/figure.js").content == b"export const answer = 44;\n"


def test_processes_setting_shares_the_cores() -> None:
    cores = os.cpu_count() or 1
    assert Settings(processes=1).threads == cores
    assert Settings(processes=cores).threads == 1
    assert Settings(processes=2, threads=3).threads == 3


def test_python_m_app_runs_several_processes_that_answer_alike(tiny_checkpoint_dir: Path) -> None:
    port = free_port()
    environment = {**os.environ, "RNN_CHECKPOINT_DIR": str(tiny_checkpoint_dir), "RNN_PORT": str(port), "RNN_PROCESSES": "2", "RNN_LOG_LEVEL": "warning"}
    server = subprocess.Popen([sys.executable, "-m", "app"], cwd=PROJECT_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        assert len(children) == 2
        # New connections land on either process: every answer is the same bytes.
        bodies = {httpx.post(f"{base}/api/connectivity", json=QUESTION, headers={"Connection": "close"}).content for _ in range(12)}
        assert len(bodies) == 1
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0].decode()
    assert server.returncode == 0, output
