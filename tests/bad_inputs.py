"""Requests no client should send, with the answer the server must give each.

Shared by tests/test_bad_input.py (status and message) and bench/load.py (time
per request); it needs nothing beyond the standard library.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass

TEN_MEGABYTES = 10 * 1024 * 1024
STREAM_CHUNK_BYTES = 64 * 1024
# Deeper than Python's recursion limit lets the JSON parser go, and still well under the body limit.
DEEP_NESTING = 5000


@dataclass(frozen=True)
class BadInput:
    """One bad request and the 4xx it must get, whose message contains every one of `message_parts`."""

    name: str
    http_method: str
    path: str
    body: bytes
    status: int
    message_parts: tuple[str, ...]
    # Send the body in chunks without Content-Length, so only the streamed-bytes limit can stop it.
    streamed: bool = False

    def content(self) -> bytes | Iterator[bytes]:
        if not self.streamed:
            return self.body
        return (self.body[start : start + STREAM_CHUNK_BYTES] for start in range(0, len(self.body), STREAM_CHUNK_BYTES))


def _json(payload: object) -> bytes:
    return json.dumps(payload).encode()


def _connectivity(**fields: object) -> bytes:
    return _json({"text": "the cat sat", "model": "gru", **fields})


_TEN_MEGABYTE_TEXT = b'{"text": "' + b"a" * TEN_MEGABYTES + b'"}'
_BODY_LIMIT_PARTS = ("request body is larger than the limit", "RNN_MAX_BODY_BYTES")

BAD_INPUTS: tuple[BadInput, ...] = (
    BadInput("10 MB body", "POST", "/api/autocomplete", _TEN_MEGABYTE_TEXT, 413, _BODY_LIMIT_PARTS),
    BadInput("10 MB body streamed without Content-Length", "POST", "/api/autocomplete", _TEN_MEGABYTE_TEXT, 413, _BODY_LIMIT_PARTS, streamed=True),
    BadInput(
        "deeply nested JSON",
        "POST",
        "/api/autocomplete",
        b'{"text": ' + b"[" * DEEP_NESTING + b"]" * DEEP_NESTING + b"}",
        400,
        ("error parsing the body",),
    ),
    BadInput("nested JSON where text belongs", "POST", "/api/autocomplete", _json({"text": [[["the cat"]]]}), 422, ("body.text", "valid string")),
    BadInput("non-UTF-8 bytes", "POST", "/api/autocomplete", '{"text": "café au lait"}'.encode("latin-1"), 400, ("error parsing the body",)),
    BadInput("malformed JSON", "POST", "/api/autocomplete", b'{"text": "the cat', 422, ("JSON decode error",)),
    BadInput("text of only punctuation", "POST", "/api/autocomplete", _json({"text": "?!.,;:'\"()-"}), 422, ("body.text", "no letters")),
    BadInput("1,001 characters", "POST", "/api/autocomplete", _json({"text": "a" * 1001}), 422, ("body.text", "1001 characters", "limit is 1000")),
    BadInput("negative position", "POST", "/api/connectivity", _connectivity(positions=[-1]), 422, ("body.positions", "position -1 is out of range")),
    BadInput(
        "huge position",
        "POST",
        "/api/connectivity",
        _connectivity(positions=[10**30]),
        422,
        ("body.positions", f"position {10**30} is out of range"),
    ),
    BadInput("empty position list", "POST", "/api/connectivity", _connectivity(positions=[]), 422, ("body.positions", "empty")),
    BadInput("unknown connectivity method", "POST", "/api/connectivity", _connectivity(method="saliency"), 422, ("body.method", "'gradient'")),
    BadInput("unknown HTTP method", "PATCH", "/api/autocomplete", _json({"text": "the cat"}), 405, ("Method Not Allowed",)),
    BadInput("word <eos>", "POST", "/api/connectivity", _connectivity(word="<eos>"), 422, ("body.word", "'<eos>'", "special token")),
    BadInput("word <unknown>", "POST", "/api/connectivity", _connectivity(word="<unknown>"), 422, ("body.word", "'<unknown>'", "special token")),
    BadInput("unknown model id", "POST", "/api/connectivity", _connectivity(model="transformer"), 422, ("body.model", "'transformer'", "unknown model")),
    BadInput(
        "counterfactual word after the position",
        "POST",
        "/api/counterfactual",
        _json({"text": "the cat sat", "position": 5, "replace_at": 9}),
        422,
        ("body.replace_at", "'sat'", "does not end before position 5"),
    ),
    BadInput(
        "counterfactual typed word of digits",
        "POST",
        "/api/counterfactual",
        _json({"text": "the cat sat", "position": 9, "replace_at": 5, "replace_with": "typed_word", "typed_word": "42"}),
        422,
        ("body.typed_word", "not one word of letters"),
    ),
    BadInput(
        "unrolled text over its limit",
        "POST",
        "/api/unrolled",
        _json({"text": "the cat sat " * 20, "model": "gru"}),
        422,
        ("body.text", "RNN_MAX_UNROLLED_CHARS"),
    ),
)


def error_message(detail: object) -> str:
    """The API's error `detail` as one line: a string as it is, validation errors as `loc: msg; ...`."""
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(str(part) for part in error.get('loc', []))}: {error.get('msg')}" for error in detail)
    return str(detail)
