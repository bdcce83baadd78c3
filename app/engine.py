"""Inference over the loaded models: suggestions (with the incremental state cache) and connectivity.

Everything here is synchronous and runs on the inference pool's threads; the
web layer never calls it on the event loop.
"""

from collections.abc import Iterator
from typing import Literal

import torch
from torch import Tensor

from app.caches import RecordingCache, ResumePoint, StateCache
from app.registry import LoadedModel, Registry
from app.schemas import ConnectivityRow, PositionSuggestions, Suggestion
from models.connectivity import Method, Recording, connectivity_rows, record
from models.text import encode, normalise
from models.vocab import SPECIAL_WORDS

FIRST_REAL_WORD = len(SPECIAL_WORDS)
LOGIT_CHUNK_ROWS = 256
# float32 needs 9 significant digits to come back exactly from decimal: rounding to 9 changes no value.
FULL_PRECISION_DIGITS = 9


class InputError(ValueError):
    """A request the models cannot answer; `field` names the request field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def round_significant(values: list[float], digits: int) -> list[float]:
    """Each value rounded to `digits` significant decimal digits: the double nearest that short decimal, so JSON prints it short."""
    return list(map(float, map(f"{{:.{digits}g}}".format, values)))  # a third faster than an f-string per value


def prepare_text(text: str, max_chars: int) -> str:
    """The normalised text, or an InputError on `text` naming the limit."""
    if len(text) > max_chars:
        raise InputError("text", f"is {len(text)} characters long; the limit is {max_chars}")
    normalised = normalise(text)
    if not normalised:
        raise InputError("text", "has no letters, so it normalises to empty text; at least 1 letter is needed")
    if len(normalised) > max_chars:
        raise InputError("text", f"normalises to {len(normalised)} characters (digits are spelled out); the limit is {max_chars}")
    return normalised


def _real_word_logits(model: LoadedModel, hidden: Tensor) -> Iterator[Tensor]:
    """The logits of the real words for rows of `hidden`, a chunk of rows at a time."""
    weight = model.net.output.weight[FIRST_REAL_WORD:]
    bias = model.net.output.bias[FIRST_REAL_WORD:]
    for start in range(0, hidden.shape[0], LOGIT_CHUNK_ROWS):
        yield torch.addmm(bias, hidden[start : start + LOGIT_CHUNK_ROWS], weight.t())


class InferenceEngine:
    """Answers autocomplete and connectivity questions for every model of a registry."""

    def __init__(
        self,
        registry: Registry,
        state_cache_size: int,
        integrated_gradients_steps: int,
        max_connectivity_work: int,
        recording_cache_size: int = 0,
    ) -> None:
        self.registry = registry
        self.cache = StateCache(state_cache_size)
        # Hovering one character after another asks about the same text each time: its forward pass is kept.
        self.recordings = RecordingCache(recording_cache_size)
        self.integrated_gradients_steps = integrated_gradients_steps
        self.max_connectivity_work = max_connectivity_work

    @property
    def model_ids(self) -> list[str]:
        return list(self.registry.models)

    def model(self, model_id: str, field: str = "model") -> LoadedModel:
        model = self.registry.models.get(model_id)
        if model is None:
            raise InputError(field, f"unknown model {model_id!r}; loaded models are {', '.join(self.registry.models)}")
        return model

    @torch.inference_mode()
    def suggest(self, model_id: str, text: str, top_k: int, positions: Literal["all", "last"]) -> list[PositionSuggestions]:
        """Top-k words at every position (`all`) or at the last one (`last`, incremental) of normalised `text`."""
        model = self.model(model_id, "models")
        if positions == "last":
            hidden = self._last_hidden(model, text)[None]
            first = len(text) - 1
        else:
            chars = torch.tensor(encode(text))[None]
            outputs, state = model.net.features(chars)
            self.cache.put((model.id, text), ResumePoint(state, outputs[0, -1]))
            hidden = outputs[0]
            first = 0
        probabilities, word_ids = self._top_words(model, hidden, top_k)
        words = self.registry.vocabulary.words
        return [
            PositionSuggestions(
                position=first + row,
                char=text[first + row],
                suggestions=[Suggestion(word=words[word], probability=probability) for word, probability in zip(word_ids[row], probabilities[row])],
            )
            for row in range(hidden.shape[0])
        ]

    def _last_hidden(self, model: LoadedModel, text: str) -> Tensor:
        """The unit's output at the last character, resuming from the longest cached prefix."""
        start, resume = self.cache.longest_prefix(model.id, text)
        if resume is not None and start == len(text):
            return resume.last_output
        chars = torch.tensor(encode(text[start:]))[None]
        outputs, state = model.net.features(chars, resume.state if resume is not None else None)
        self.cache.put((model.id, text), ResumePoint(state, outputs[0, -1]))
        return outputs[0, -1]

    @staticmethod
    def _top_words(model: LoadedModel, hidden: Tensor, top_k: int) -> tuple[list[list[float]], list[list[int]]]:
        """Top-k real words per row of `hidden`; `<eos>` and `<unknown>` are never suggested nor counted."""
        probabilities, word_ids = [], []
        for logits in _real_word_logits(model, hidden):
            top = logits.topk(top_k, dim=-1)
            probabilities.extend((top.values - logits.logsumexp(dim=-1, keepdim=True)).exp().tolist())
            word_ids.extend((top.indices + FIRST_REAL_WORD).tolist())
        return probabilities, word_ids

    @staticmethod
    def _best_words(model: LoadedModel, hidden: Tensor) -> list[int]:
        """The top real word per row of `hidden`, as `_top_words` ranks them, without their probabilities."""
        return [index + FIRST_REAL_WORD for logits in _real_word_logits(model, hidden) for index in logits.argmax(dim=-1).tolist()]

    @torch.inference_mode()
    def connectivity(
        self,
        model_id: str,
        text: str,
        positions: list[int] | None,
        word: str | None,
        method: Method,
        significant_digits: int = FULL_PRECISION_DIGITS,
    ) -> list[ConnectivityRow]:
        """Connectivity rows of normalised `text`; `positions` None means the last position.

        Each row holds the values of characters 0 to its position (later ones are
        0 by causality), rounded to `significant_digits`.
        """
        model = self.model(model_id)
        length = len(text)
        positions = [length - 1] if positions is None else positions
        if not positions:
            raise InputError("positions", "is an empty list; ask for at least one position, or omit it for the last one")
        for position in positions:
            if not 0 <= position < length:
                raise InputError("positions", f"position {position} is out of range; the normalised text has positions 0 to {length - 1}")
        steps = self.integrated_gradients_steps if method == "integrated_gradients" else 1
        work = sum(position + 1 for position in positions) * steps
        if work > self.max_connectivity_work:
            raise InputError(
                "positions",
                f"these rows need {work:,} row-steps (sum of position + 1 per row"
                + (f", times {steps} integrated-gradients steps" if steps > 1 else "")
                + f"); the limit is {self.max_connectivity_work:,}: ask for fewer or earlier positions",
            )
        word_ids = None if word is None else [self._word_id(word)] * len(positions)
        recording = self._recording(model, text[: max(positions) + 1], method)
        if word_ids is None:
            word_ids = self._best_words(model, recording.outputs[positions])
        rows = connectivity_rows(model.net, recording, positions, word_ids, method)
        values = rows.values.tolist()
        words = self.registry.vocabulary.words
        errors = rows.completeness_errors.tolist() if rows.completeness_errors is not None else [None] * len(positions)
        return [
            ConnectivityRow(
                position=position,
                word=words[word_id],
                connectivity=round_significant(values[row][: position + 1], significant_digits),
                completeness_error=error,
            )
            for row, (position, word_id, error) in enumerate(zip(positions, word_ids, errors))
        ]

    def _recording(self, model: LoadedModel, prefix: str, method: Method) -> Recording:
        """A forward pass over at least `prefix` for `method`.

        The units are causal, so a recording of any text that starts with
        `prefix` serves; plain-gradient recordings are cached (integrated
        gradients' are `steps` times larger).
        """
        if method == "integrated_gradients":
            return record(model.net, torch.tensor(encode(prefix)), method, self.integrated_gradients_steps)
        recording = self.recordings.covering(model.id, prefix)
        if recording is None:
            recording = record(model.net, torch.tensor(encode(prefix)), method)
            self.recordings.put((model.id, prefix), recording)
        return recording

    def _word_id(self, word: str) -> int:
        vocabulary = self.registry.vocabulary
        if word in SPECIAL_WORDS:
            raise InputError("word", f"{word!r} is a special token the models are not trained to predict; ask for a real word")
        if word not in vocabulary.ids:
            raise InputError(
                "word", f"{word!r} is not in the models' vocabulary of {len(vocabulary) - FIRST_REAL_WORD:,} lowercase words"
            )
        return vocabulary.ids[word]
