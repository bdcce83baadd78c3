"""Contract tests of the JSON API through the real ASGI app."""

import json
import math

import pytest
import torch
from conftest import TINY_WORDS
from fastapi.testclient import TestClient

from app.main import create_app
from app.middleware import CONTENT_SECURITY_POLICY
from app.settings import BUNDLED_CHECKPOINTS, Settings
from models.text import normalise
from models.units import get_unit, unit_names

UNITS = ["gru", "lstm", "nlstm"]


def error_message(response) -> tuple[list, str]:
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    return detail[0]["loc"], detail[0]["msg"]


def test_healthz_lists_models(tiny_client: TestClient) -> None:
    response = tiny_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "models": UNITS}


def test_models_describe_checkpoints_and_metrics(tiny_client: TestClient) -> None:
    models = tiny_client.get("/api/models").json()
    assert [model["id"] for model in models] == UNITS
    by_id = {model["id"]: model for model in models}
    assert by_id["nlstm"]["name"] == "Nested LSTM"
    assert (by_id["gru"]["num_layers"], by_id["nlstm"]["num_layers"], by_id["nlstm"]["depth"]) == (2, 1, 2)
    assert by_id["gru"]["hidden_size"] == 16
    assert by_id["gru"]["parameters"] == {"embedding": 27 * 16, "recurrent": 2 * (3 * 16 * 16 * 2 + 6 * 16), "dense": 16 * 58 + 58}
    assert by_id["lstm"]["metrics"]["test_cross_entropy"] == pytest.approx(3.6)
    assert by_id["lstm"]["metrics"]["test_accuracy"] == pytest.approx(0.24)
    # Description and diagram come from the unit registry; each built-in unit brings an SVG of one step.
    assert by_id["lstm"]["description"] == get_unit("lstm").description and by_id["lstm"]["description"]
    assert [model["diagram"] for model in models] == [get_unit(model["unit"]).diagram for model in models]
    assert all(model["diagram"].startswith("<svg") for model in models)
    assert {model["vocabulary_size"] for model in models} == {len(TINY_WORDS)}


def test_limits_follow_the_settings(tiny_checkpoint_dir) -> None:
    settings = Settings(checkpoint_dir=tiny_checkpoint_dir, max_text_chars=300, max_connectivity_work=5000, integrated_gradients_steps=64)
    with TestClient(create_app(settings)) as client:
        response = client.get("/api/limits")
        limits = response.json()
        # 99 x 100 / 2 = 4950 <= 5000 < 100 x 101 / 2; 12 x 13 / 2 x 64 = 4992 <= 5000 < 13 x 14 / 2 x 64.
        assert limits == {
            "max_text_chars": 300,
            "max_top_k": 10,
            "max_connectivity_work": 5000,
            "integrated_gradients_steps": 64,
            "full_matrix_chars": 99,
            "integrated_gradients_full_matrix_chars": 12,
            "max_unrolled_chars": 100,
        }
        assert client.get("/api/limits", headers={"If-None-Match": response.headers["etag"]}).status_code == 304
        # The page carries the same limits, so its figures ask only for what is served.
        page = client.get("/").text
        embedded = page.split('<script type="application/json" id="limits">', 1)[1].split("</script>", 1)[0]
        assert json.loads(embedded) == limits
        for method, longest in (("gradient", 99), ("integrated_gradients", 12)):
            fits = {"text": "x" * (longest - 1), "model": "gru", "positions": "all", "method": method}
            assert len(normalise(fits["text"])) == longest
            assert client.post("/api/connectivity", json=fits).status_code == 200
            too_long = {**fits, "text": "x" * longest}
            assert client.post("/api/connectivity", json=too_long).status_code == 422
        assert client.post("/api/autocomplete", json={"text": "the cat", "top_k": limits["max_top_k"] + 1}).status_code == 422


def test_full_matrix_chars_never_exceed_the_text_limit(tiny_checkpoint_dir) -> None:
    settings = Settings(checkpoint_dir=tiny_checkpoint_dir, max_text_chars=40, max_connectivity_work=5000)
    with TestClient(create_app(settings)) as client:
        limits = client.get("/api/limits").json()
    assert (limits["full_matrix_chars"], limits["integrated_gradients_full_matrix_chars"]) == (40, 17)


def test_models_without_metrics_file(tmp_path, tiny_checkpoint_dir) -> None:
    for name in ("gru.safetensors", "vocab.json"):
        (tmp_path / name).write_bytes((tiny_checkpoint_dir / name).read_bytes())
    with TestClient(create_app(Settings(checkpoint_dir=tmp_path))) as client:
        assert client.get("/api/models").json()[0]["metrics"] is None
        assert client.get("/healthz").json()["models"] == ["gru"]


def test_autocomplete_all_positions(tiny_client: TestClient) -> None:
    response = tiny_client.post("/api/autocomplete", json={"text": "The Cat, 2 dogs!", "top_k": 4})
    assert response.status_code == 200
    body = response.json()
    assert body["text"] == normalise("The Cat, 2 dogs!") == " the cat two dogs "
    assert list(body["models"]) == UNITS
    for rows in body["models"].values():
        assert [row["position"] for row in rows] == list(range(len(body["text"])))
        assert "".join(row["char"] for row in rows) == body["text"]
        for row in rows:
            probabilities = [suggestion["probability"] for suggestion in row["suggestions"]]
            assert len(probabilities) == 4
            assert all(0 < p <= 1 for p in probabilities)
            assert probabilities == sorted(probabilities, reverse=True)
            assert all(not s["word"].startswith("<") for s in row["suggestions"])


def test_autocomplete_last_position_and_model_choice(tiny_client: TestClient) -> None:
    body = tiny_client.post("/api/autocomplete", json={"text": "the ca", "models": ["lstm", "lstm"], "positions": "last"}).json()
    assert list(body["models"]) == ["lstm"]
    (row,) = body["models"]["lstm"]
    assert (row["position"], row["char"], len(row["suggestions"])) == (6, "a", 3)
    every = tiny_client.post("/api/autocomplete", json={"text": "the ca", "models": ["lstm"]}).json()["models"]["lstm"][-1]
    assert [s["word"] for s in every["suggestions"]] == [s["word"] for s in row["suggestions"][:3]]
    for mine, theirs in zip(row["suggestions"], every["suggestions"]):
        assert math.isclose(mine["probability"], theirs["probability"], rel_tol=1e-5)


@pytest.mark.parametrize(
    "endpoint,body,field,fragment",
    [
        ("/api/autocomplete", {"text": "?!. ,"}, "text", "no letters"),
        ("/api/autocomplete", {"text": ""}, "text", "no letters"),
        ("/api/autocomplete", {"text": "a" * 1001}, "text", "1000"),
        ("/api/autocomplete", {"text": "1" * 300}, "text", "normalises to"),
        ("/api/autocomplete", {"text": "hi", "models": ["rnn"]}, "models", "unknown model 'rnn'"),
        ("/api/autocomplete", {"text": "hi", "models": []}, "models", "at least 1"),
        ("/api/autocomplete", {"text": "hi", "top_k": 0}, "top_k", "greater than or equal to 1"),
        ("/api/autocomplete", {"text": "hi", "top_k": 11}, "top_k", "less than or equal to 10"),
        ("/api/autocomplete", {"text": "hi", "positions": "first"}, "positions", "'all' or 'last'"),
        ("/api/autocomplete", {"txt": "hi"}, "text", "Field required"),
        ("/api/autocomplete", {"text": 5}, "text", "valid string"),
        ("/api/connectivity", {"text": "the cat", "model": "gru", "word": "zebra"}, "word", "not in the models' vocabulary"),
        ("/api/connectivity", {"text": "the cat", "model": "gru", "word": "<unknown>"}, "word", "special token"),
        ("/api/connectivity", {"text": "the cat", "model": "gru", "word": "<eos>"}, "word", "special token"),
        ("/api/connectivity", {"text": "the cat", "model": "gru", "positions": [8]}, "positions", "0 to 7"),
        ("/api/connectivity", {"text": "the cat", "model": "gru", "positions": [-1]}, "positions", "0 to 7"),
        ("/api/connectivity", {"text": "the cat", "model": "gru", "positions": [10**30]}, "positions", "out of range"),
        ("/api/connectivity", {"text": "the cat", "model": "gru", "positions": "some"}, "positions", ""),
        ("/api/connectivity", {"text": "the cat", "model": "gru", "method": "saliency"}, "method", "'gradient'"),
        ("/api/connectivity", {"text": "the cat", "model": "transformer"}, "model", "unknown model"),
        ("/api/connectivity", {"text": "...", "model": "gru"}, "text", "no letters"),
        ("/api/connectivity", {"text": "a" * 1001, "model": "gru"}, "text", "limit is 1000"),
        ("/api/connectivity", {"text": "ab " * 300, "model": "gru", "positions": "all", "method": "integrated_gradients"}, "positions", "limit is 120,000"),
    ],
)
def test_bad_input_names_the_field_and_the_limit(tiny_client: TestClient, endpoint: str, body: dict, field: str, fragment: str) -> None:
    response = tiny_client.post(endpoint, json=body)
    assert response.status_code == 422
    location, message = error_message(response)
    assert field in location
    assert fragment in message


def test_connectivity_default_row(tiny_client: TestClient) -> None:
    response = tiny_client.post("/api/connectivity", json={"text": "the cat sat", "model": "gru"})
    assert response.status_code == 200
    body = response.json()
    assert (body["text"], body["model"], body["method"]) == (" the cat sat", "gru", "gradient")
    (row,) = body["rows"]
    assert row["position"] == 11
    assert len(row["connectivity"]) == 12
    assert row["completeness_error"] is None
    top1 = tiny_client.post("/api/autocomplete", json={"text": "the cat sat", "models": ["gru"], "positions": "last"}).json()
    assert row["word"] == top1["models"]["gru"][0]["suggestions"][0]["word"]


@pytest.mark.parametrize("model", UNITS)
@pytest.mark.parametrize("method", ["gradient", "gradient_x_input", "integrated_gradients"])
def test_connectivity_rows_are_causal(tiny_client: TestClient, model: str, method: str) -> None:
    positions = [3, 8, 3] if method == "integrated_gradients" else "all"
    body = {"text": "the cat sat", "model": model, "positions": positions, "word": "cat", "method": method}
    rows = tiny_client.post("/api/connectivity", json=body).json()["rows"]
    assert [row["position"] for row in rows] == ([3, 8, 3] if positions != "all" else list(range(12)))
    for row in rows:
        assert row["word"] == "cat"
        assert all(value == 0 for value in row["connectivity"][row["position"] + 1 :])
        assert any(value != 0 for value in row["connectivity"][: row["position"] + 1])
        if method == "integrated_gradients":
            assert row["completeness_error"] < 1e-3 * max(1e-3, abs(sum(row["connectivity"])))
        else:
            assert all(value >= 0 for value in row["connectivity"])
    if method == "integrated_gradients":
        assert rows[0] == rows[2]



@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"text": "a"', b"\xff\xfe\x00garbage", b"[" * 50_000, b'"just a string"', b"null"],
)
def test_malformed_bodies_are_4xx(tiny_client: TestClient, content: bytes) -> None:
    for path in ("/api/autocomplete", "/api/connectivity"):
        response = tiny_client.post(path, content=content, headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500, (content[:20], response.status_code)
        assert response.json()["detail"]


def test_oversized_body_refused_before_parsing(tiny_client: TestClient) -> None:
    response = tiny_client.post("/api/autocomplete", content=b"x" * 10_000_000, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "65,536 bytes" in response.json()["detail"]

    def chunks():
        for _ in range(100):
            yield b" " * 1000

    streamed = tiny_client.post("/api/connectivity", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


def test_security_headers_everywhere(tiny_client: TestClient) -> None:
    for response in (
        tiny_client.get("/"),
        tiny_client.get("/api/models"),
        tiny_client.post("/api/autocomplete", json={"text": ""}),
        tiny_client.get("/static/data/paper.json"),
        tiny_client.get("/nowhere"),
    ):
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY


def test_openapi_documents_every_field(tiny_client: TestClient) -> None:
    assert tiny_client.get("/docs").status_code == 200
    schemas = tiny_client.get("/openapi.json").json()["components"]["schemas"]
    ours = [name for name in schemas if name not in ("HTTPValidationError", "ValidationError")]
    assert {"AutocompleteRequest", "ConnectivityRequest", "ConnectivityRow", "ModelInfo"} <= set(ours)
    for name in ours:
        for field, spec in schemas[name]["properties"].items():
            assert spec.get("description"), f"{name}.{field} has no description"


def test_pages_and_static_files(tiny_client: TestClient) -> None:
    page = tiny_client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert tiny_client.get("/static/data/paper.json").json()["dataset"]
    assert tiny_client.get("/vendor/d3/no-such-file.js").status_code == 404


def test_bundled_models_answer(bundled_client: TestClient) -> None:
    models = bundled_client.get("/api/models").json()
    # The paper's three, then the shipped plug-ins from their own packages (examples/), in the order they register.
    plug_ins = [unit for unit in unit_names() if unit not in UNITS and (BUNDLED_CHECKPOINTS / f"{unit}.safetensors").is_file()]
    assert [model["id"] for model in models] == [*UNITS, *plug_ins] and {"mingru", "rnn"} <= set(plug_ins)
    body = bundled_client.post("/api/autocomplete", json={"text": "the united states of americ", "positions": "last"}).json()
    for rows in body["models"].values():
        assert "america" in [s["word"] for s in rows[0]["suggestions"]]
    rows = bundled_client.post("/api/connectivity", json={"text": "the cat sat", "model": "nlstm", "positions": "all"}).json()["rows"]
    # Each row stops at its own position: later characters cannot influence it.
    assert [len(row["connectivity"]) for row in rows] == [row["position"] + 1 for row in rows]
    assert torch.tensor(rows[-1]["connectivity"]).gt(0).all()
