"""Inference over the loaded models: suggestions (with the incremental state cache), connectivity, counterfactuals and unrolled gradients.

Everything here is synchronous and runs on the inference pool's threads; the
web layer never calls it on the event loop.
"""

import math
import os
from collections.abc import Iterator
from typing import Literal

import torch
from torch import Tensor

from app.caches import RecordingCache, ResumePoint, StateCache
from app.registry import LoadedModel, Registry
from app.schemas import ConnectivityRow, ModelCounterfactual, PositionSuggestions, Suggestion, UnrolledResponse, UnrolledRow
from models.connectivity import Method, Recording, connectivity_rows, integrated_gradients, record, record_continuing, round_significant
from models.text import encode, normalise
from models.unrolled import unrolled_gradient_norms
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
        state_cache_bytes: int | None = None,
    ) -> None:
        self.registry = registry
        self.cache = StateCache(state_cache_size, state_cache_bytes)
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
        positions = self._rows(text, positions, method)
        word_ids = None if word is None else [self._word_id(word)] * len(positions)
        return self._connectivity(model, text, positions, word_ids, method, significant_digits)

    def _connectivity(
        self,
        model: LoadedModel,
        text: str,
        positions: list[int],
        word_ids: list[int] | None,
        method: Method,
        significant_digits: int,
        recording: Recording | None = None,
    ) -> list[ConnectivityRow]:
        """The rows at checked `positions` for `word_ids` (None: the model's first guesses); a plain-gradient
        `recording` covering them, if the caller holds one, spares recording the text again."""
        prefix = text[: max(positions) + 1]
        if method == "integrated_gradients":
            if word_ids is None:
                word_ids = self._best_words(model, model.net.features(torch.tensor(encode(prefix))[None])[0][0, positions])
            # The path starts with `steps` nodes and gets more where it needs them, as many as the work limit allows these rows.
            max_steps = self.max_connectivity_work // sum(position + 1 for position in positions)
            rows = integrated_gradients(model.net, torch.tensor(encode(prefix)), positions, word_ids, self.integrated_gradients_steps, max_steps)
        else:
            recording = recording or self._recording(model, prefix, method)
            if word_ids is None:
                word_ids = self._best_words(model, recording.outputs[positions])
            rows = connectivity_rows(model.net, recording, positions, word_ids, method)
        values = rows.values.tolist()
        words = self.registry.vocabulary.words
        nothing = [None] * len(positions)
        errors = rows.completeness_errors.tolist() if rows.completeness_errors is not None else nothing
        changes = rows.score_changes.tolist() if rows.score_changes is not None else nothing
        jumps = rows.unresolved_jumps.tolist() if rows.unresolved_jumps is not None else nothing
        return [
            ConnectivityRow(
                position=position,
                word=words[word_id],
                connectivity=round_significant(values[row][: position + 1], significant_digits),
                completeness_error=error,
                score_change=change,
                integration_steps=rows.integration_steps,
                unresolved_jump=jump,
            )
            for row, (position, word_id, error, change, jump) in enumerate(zip(positions, word_ids, errors, changes, jumps))
        ]

    def _rows(self, text: str, positions: list[int] | None, method: Method) -> list[int]:
        """The requested rows of normalised `text` (None: the last position), or an InputError when one is out of range or they are too much work."""
        steps = self.integrated_gradients_steps if method == "integrated_gradients" else 1
        length = len(text)
        positions = [length - 1] if positions is None else positions
        if not positions:
            raise InputError("positions", "is an empty list; ask for at least one position, or omit it for the last one")
        for position in positions:
            if not 0 <= position < length:
                raise InputError("positions", f"position {position} is out of range; the normalised text has positions 0 to {length - 1}")
        work = sum(position + 1 for position in positions) * steps
        if work > self.max_connectivity_work:
            raise InputError(
                "positions",
                f"these rows need {work:,} row-steps (sum of position + 1 per row"
                + (f", times {steps} integrated-gradients steps" if steps > 1 else "")
                + f"); the limit is {self.max_connectivity_work:,}: ask for fewer or earlier positions",
            )
        return positions

    @torch.inference_mode()
    def counterfactual(
        self,
        model_id: str,
        text: str,
        position: int,
        edited_text: str,
        edited_position: int,
        word: str | None,
        method: Method,
        top_k: int,
        significant_digits: int,
    ) -> ModelCounterfactual:
        """One model's guesses at `position` of normalised `text` and at the same character of `edited_text`, and the edited row.

        The word compared is `word`, or the model's first guess in the original text.
        """
        model = self.model(model_id, "models")
        self._rows(edited_text, [edited_position], method)
        asked_word = None if word is None else self._word_id(word)
        original, edited = text[: position + 1], edited_text[: edited_position + 1]
        if method == "integrated_gradients":
            edited_recording = None
            before_hidden, after_hidden = self._last_hidden(model, original), self._last_hidden(model, edited)
        else:
            original_recording = self._recording(model, original, method)
            edited_recording = self.recordings.covering(model.id, edited)
            if edited_recording is None:
                # The edited text's recording reuses the original's up to the replaced word, as the text there is the same.
                shared = len(os.path.commonprefix([original, edited]))
                edited_recording = record_continuing(model.net, original_recording, shared, torch.tensor(encode(edited)))
                self.recordings.put((model.id, edited), edited_recording)
            # The guesses read the forward passes the row is computed on.
            before_hidden, after_hidden = original_recording.outputs[position], edited_recording.outputs[edited_position]
        # Both outputs' logits at once; the first guess and the guesses before read the same ones (the 16,384-word output
        # layer is most of the guesses' cost).
        logits = next(_real_word_logits(model, torch.stack([before_hidden, after_hidden])))
        word_id = asked_word if asked_word is not None else int(logits[0].argmax()) + FIRST_REAL_WORD
        row = self._connectivity(model, edited_text, [edited_position], [word_id], method, significant_digits, edited_recording)[0]
        log_probabilities = logits.log_softmax(dim=-1)
        before, log_before = self._guesses(log_probabilities[0], word_id, top_k)
        after, log_after = self._guesses(log_probabilities[1], word_id, top_k)
        return ModelCounterfactual(
            word=row.word,
            before=before,
            after=after,
            probability_before=math.exp(log_before),
            probability_after=math.exp(log_after),
            change_nats=log_after - log_before,
            connectivity=row,
        )

    def _guesses(self, log_probabilities: Tensor, word_id: int, top_k: int) -> tuple[list[Suggestion], float]:
        """The top-k real words of one output's `log_probabilities` [real words], and the log-probability of `word_id` there."""
        top = log_probabilities.topk(top_k)
        words = self.registry.vocabulary.words
        suggestions = [
            Suggestion(word=words[index + FIRST_REAL_WORD], probability=math.exp(value))
            for value, index in zip(top.values.tolist(), top.indices.tolist())
        ]
        return suggestions, float(log_probabilities[word_id - FIRST_REAL_WORD])

    @torch.inference_mode()
    def unrolled(self, model_id: str, text: str, positions: list[int] | None, significant_digits: int) -> UnrolledResponse:
        """The gradient norms of every layer at every step for the rows of normalised `text` at `positions` (models/unrolled.py)."""
        model = self.model(model_id)
        if positions is not None and len(positions) > len(text):
            raise InputError("positions", f"lists {len(positions):,} positions; the normalised text has {len(text)}")
        positions = self._rows(text, positions, "gradient")
        norms = unrolled_gradient_norms(
            model.net, torch.tensor(encode(text)), positions, lambda outputs: self._best_words(model, outputs)
        )
        words = self.registry.vocabulary.words
        inputs, layers = norms.inputs.tolist(), norms.layers.tolist()
        rows = [
            UnrolledRow(
                position=position,
                word=words[norms.word_ids[row]],
                input=round_significant(inputs[row][: position + 1], significant_digits),
                layers=[round_significant(layer[row][: position + 1], significant_digits) for layer in layers],
            )
            for row, position in enumerate(positions)
        ]
        return UnrolledResponse(text=text, model=model_id, layers=len(layers), layers_found=norms.layers_resolved, rows=rows)

    def _recording(self, model: LoadedModel, prefix: str, method: Method) -> Recording:
        """A forward pass over at least `prefix` for the plain-gradient `method`s, cached.

        The units are causal, so a recording of any text that starts with
        `prefix` serves.
        """
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
