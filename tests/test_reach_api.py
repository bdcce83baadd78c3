"""The counterfactual (/api/counterfactual) and the unrolled gradient norms (/api/unrolled) through the API.

The counterfactual's numbers are held against the other endpoints and the models themselves; its rows against
/api/connectivity on the edited text; the unrolled norms against models/unrolled.py. Both are cached like every
other answer, and a bad request gets a 422 naming the field at fault.
"""

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from reach_checkpoints import write_reach_checkpoints

from app.engine import FIRST_REAL_WORD
from app.main import create_app
from app.settings import Settings
from models.checkpoint import load_checkpoint
from models.text import encode, normalise
from models.unrolled import unrolled_gradient_norms

TEXT = normalise("the cat sat on the mat with a dog and the cat")
POSITION = TEXT.rindex(" cat") + 1  # the "c" of the second "cat"
FIRST_CAT = TEXT.index("cat")
UNITS = ["gru", "lstm", "nlstm", "rnn"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_reach_checkpoints(tmp_path_factory.mktemp("reach"))


@pytest.fixture(scope="module")
def client(checkpoints: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(checkpoint_dir=checkpoints, max_unrolled_chars=60))) as client:
        yield client


def ask(client: TestClient, **fields: object) -> dict:
    response = client.post("/api/counterfactual", json={"text": TEXT, "position": POSITION, "replace_at": FIRST_CAT, **fields})
    assert response.status_code == 200, response.text
    return response.json()


def word_probability(client: TestClient, text: str, position: int, model: str, word: str) -> float:
    """The word's probability at `position` from the models directly, among real words as the API counts it."""
    net = load_checkpoint(client.app.state.settings.checkpoint_dir / f"{model}.safetensors").eval()
    vocabulary = client.app.state.engine.registry.vocabulary
    with torch.no_grad():
        logits = net.logits(net.features(torch.tensor(encode(text))[None])[0][0, position])[FIRST_REAL_WORD:]
    return logits.log_softmax(dim=-1)[vocabulary.ids[word] - FIRST_REAL_WORD].exp().item()


def same_guesses(ours: list[dict], theirs: list[dict]) -> bool:
    return [item["word"] for item in ours] == [item["word"] for item in theirs] and all(
        math.isclose(mine["probability"], other["probability"], rel_tol=1e-5) for mine, other in zip(ours, theirs)
    )


def test_a_typed_word_gives_the_guesses_and_row_of_the_edited_text(client: TestClient) -> None:
    answer = ask(client, replace_with="typed_word", typed_word="Dogs")
    edited = TEXT[:FIRST_CAT] + "dogs" + TEXT[FIRST_CAT + 3 :]
    assert answer["edited_text"] == edited and answer["edited_position"] == POSITION + 1
    assert answer["replaced"] == {"start": FIRST_CAT, "end": FIRST_CAT + 3, "original": "cat", "replacement": "dogs"}
    assert list(answer["models"]) == UNITS
    before = client.post("/api/autocomplete", json={"text": TEXT, "top_k": 3}).json()["models"]
    after = client.post("/api/autocomplete", json={"text": edited, "top_k": 3}).json()["models"]
    for model, result in answer["models"].items():
        assert same_guesses(result["before"], before[model][POSITION]["suggestions"])
        assert same_guesses(result["after"], after[model][POSITION + 1]["suggestions"])
        # The word compared is the model's own first guess in the original text.
        assert result["word"] == before[model][POSITION]["suggestions"][0]["word"]
        assert result["probability_before"] == pytest.approx(result["before"][0]["probability"])
        assert result["probability_after"] == pytest.approx(word_probability(client, edited, POSITION + 1, model, result["word"]), rel=1e-5)
        assert result["change_nats"] == pytest.approx(math.log(result["probability_after"] / result["probability_before"]), abs=1e-6)
        row = client.post(
            "/api/connectivity", json={"text": edited, "model": model, "positions": [POSITION + 1], "word": result["word"]}
        ).json()["rows"][0]
        # The same row; fields that only integrated gradients fill (null here) may be left out of either answer.
        filled = {key: value for key, value in result["connectivity"].items() if value is not None}
        assert filled == {key: value for key, value in row.items() if value is not None}


def test_spaces_keep_every_position_and_are_read_as_spaces(client: TestClient) -> None:
    answer = ask(client, replace_with="spaces", word="the")
    assert answer["edited_text"] == TEXT[:FIRST_CAT] + "   " + TEXT[FIRST_CAT + 3 :] and answer["edited_position"] == POSITION
    for model, result in answer["models"].items():
        assert result["word"] == "the"
        # Not normalised again: the model reads three spaces where "cat" was.
        assert result["probability_after"] == pytest.approx(word_probability(client, answer["edited_text"], POSITION, model, "the"), rel=1e-5)
        assert result["probability_before"] == pytest.approx(word_probability(client, TEXT, POSITION, model, "the"), rel=1e-5)
        assert len(result["connectivity"]["connectivity"]) == POSITION + 1


def test_another_word_of_the_same_length_is_drawn_the_same_way_every_time(client: TestClient) -> None:
    vocabulary = client.app.state.engine.registry.vocabulary
    drawn = {ask(client, draw=draw, models=["gru"])["replaced"]["replacement"] for draw in range(6)}
    assert all(len(word) == 3 and word != "cat" and word in vocabulary.ids for word in drawn)
    assert len(drawn) > 1
    assert ask(client, draw=4, models=["gru"])["replaced"]["replacement"] == ask(client, draw=4, models=["gru"])["replaced"]["replacement"]


def test_a_counterfactual_is_cached_and_its_get_form_gives_the_same_bytes(client: TestClient) -> None:
    body = {"text": TEXT, "position": POSITION, "replace_at": FIRST_CAT + 1, "replace_with": "spaces", "models": ["gru", "rnn"]}
    first = client.post("/api/counterfactual", json=body)
    engine = client.app.state.engine
    original, calls = engine.counterfactual, []
    engine.counterfactual = lambda *args: calls.append(args) or original(*args)
    try:
        again = client.post("/api/counterfactual", json=body)
        query = {**body, "models": "gru,rnn", "v": first.headers["x-answers-version"]}
        get = client.get("/api/counterfactual", params=query)
    finally:
        engine.counterfactual = original
    assert calls == []
    assert again.content == first.content == get.content and again.headers["etag"] == first.headers["etag"]
    assert "immutable" in get.headers["cache-control"]


def test_unrolled_norms_are_the_models_own_and_cached(client: TestClient, checkpoints: Path) -> None:
    text = TEXT[:40]
    answer = client.get("/api/unrolled", params={"text": text, "model": "lstm", "positions": "39,3", "significant_digits": 9})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["layers"] == 2 and body["layers_found"] and [row["position"] for row in body["rows"]] == [39, 3]
    net = load_checkpoint(checkpoints / "lstm.safetensors").eval()
    net.requires_grad_(False)
    words = client.post("/api/autocomplete", json={"text": text, "models": ["lstm"], "top_k": 1}).json()["models"]["lstm"]
    vocabulary = client.app.state.engine.registry.vocabulary
    first_guesses = [vocabulary.ids[words[position]["suggestions"][0]["word"]] for position in (39, 3)]
    with torch.inference_mode():
        norms = unrolled_gradient_norms(net, torch.tensor(encode(text)), [39, 3], lambda outputs: first_guesses)
    for index, row in enumerate(body["rows"]):
        position = row["position"]
        assert row["word"] == words[position]["suggestions"][0]["word"]
        assert len(row["input"]) == position + 1 and all(len(layer) == position + 1 for layer in row["layers"])
        assert row["input"] == pytest.approx(norms.inputs[index, : position + 1].tolist(), rel=1e-6)
        for layer, expected in zip(row["layers"], norms.layers[:, index, : position + 1].tolist()):
            assert layer == pytest.approx(expected, rel=1e-6)
    assert client.post("/api/unrolled", json={"text": text, "model": "lstm", "positions": [39, 3], "significant_digits": 9}).content == answer.content
    everything = client.post("/api/unrolled", json={"text": "the cat sat", "model": "rnn", "positions": "all"}).json()
    assert [row["position"] for row in everything["rows"]] == list(range(len(" the cat sat")))


def test_the_limits_name_the_longest_unrolled_text(client: TestClient) -> None:
    limits = client.get("/api/limits").json()
    assert limits["max_unrolled_chars"] == 60
    fits = "x" * 59
    assert client.post("/api/unrolled", json={"text": fits, "model": "gru"}).status_code == 200
    assert client.post("/api/unrolled", json={"text": fits + "x", "model": "gru"}).status_code == 422


BAD_COUNTERFACTUALS = [
    ({"replace_at": FIRST_CAT - 1}, "replace_at", "is a space"),
    ({"replace_at": POSITION}, "replace_at", "does not end before position"),
    ({"replace_at": 500}, "replace_at", "out of range"),
    ({"position": 500}, "position", "out of range"),
    ({"replace_with": "typed_word"}, "typed_word", "is missing"),
    ({"replace_with": "typed_word", "typed_word": "two words"}, "typed_word", "not one word of letters"),
    ({"replace_with": "typed_word", "typed_word": "r2d2"}, "typed_word", "not one word of letters"),
    ({"typed_word": "dog"}, "typed_word", "only read with replace_with 'typed_word'"),
    ({"replace_with": "erase"}, "replace_with", "'other_word'"),
    ({"models": ["gru", "transformer"]}, "models", "unknown model 'transformer'"),
    ({"word": "<unknown>"}, "word", "special token"),
    ({"word": "zebra"}, "word", "not in the models' vocabulary"),
    ({"draw": -1}, "draw", "greater than or equal to 0"),
    ({"replace_with": "typed_word", "typed_word": "a" * 40, "text": "the cat " * 124, "position": 980}, "typed_word", "limit is 1000"),
]


@pytest.mark.parametrize("fields,field,message", BAD_COUNTERFACTUALS, ids=[case[2] for case in BAD_COUNTERFACTUALS])
def test_a_bad_counterfactual_is_a_422_naming_its_field(client: TestClient, fields: dict, field: str, message: str) -> None:
    response = client.post("/api/counterfactual", json={"text": TEXT, "position": POSITION, "replace_at": FIRST_CAT, **fields})
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"][-1] == field and message in error["msg"]


def test_no_word_of_the_same_length_is_a_422_that_says_what_to_do_instead(client: TestClient) -> None:
    text = normalise("the extraordinarily long word and the cat")
    response = client.post("/api/counterfactual", json={"text": text, "position": len(text) - 1, "replace_at": 6})
    assert response.status_code == 422
    assert "no other vocabulary word has 15 letters" in response.json()["detail"][0]["msg"]


BAD_UNROLLED = [
    ({"positions": [99]}, "positions", "out of range"),
    ({"positions": []}, "positions", "empty list"),
    ({"positions": [1] * 50}, "positions", "lists 50 positions"),
    ({"model": "transformer"}, "model", "unknown model"),
    ({"text": "?!"}, "text", "no letters"),
    ({"significant_digits": 10}, "significant_digits", "less than or equal to 9"),
]


@pytest.mark.parametrize("fields,field,message", BAD_UNROLLED, ids=[case[2] for case in BAD_UNROLLED])
def test_a_bad_unrolled_question_is_a_422_naming_its_field(client: TestClient, fields: dict, field: str, message: str) -> None:
    response = client.post("/api/unrolled", json={"text": "the cat sat", "model": "gru", **fields})
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"][-1] == field and message in error["msg"]
    query = {key: ",".join(map(str, value)) if isinstance(value, list) else value for key, value in {"text": "the cat sat", "model": "gru", **fields}.items()}
    if fields.get("positions") != []:
        assert client.get("/api/unrolled", params=query).status_code == 422
