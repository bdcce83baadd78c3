"""Answers as bytes, computed once: every answer is a pure function of the model files and the request.

An `Answer` is a response body serialised once, gzip-compressed once and named
by a strong ETag. `AnswerCache` keeps recent answers in an LRU bounded in bytes,
keyed by the answer version (the models' content digest and the answer format)
and the normalised request, so the same text, method and word are computed once
per process however many readers ask. `Answers` is the service the endpoints
call: it validates, normalises, looks up, and on a miss computes on the
inference pool, once even when many readers ask for the same thing at the same
moment.
"""

import asyncio
import gzip
import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import partial
from typing import Literal

from app.edits import edit_word
from app.engine import InferenceEngine, InputError, prepare_text
from app.pool import InferencePool
from app.schemas import AutocompleteResponse, ConnectivityResponse, CounterfactualResponse, ModelInfo, ReplacedWord, Replacement
from app.settings import Settings
from models.connectivity import Method

logger = logging.getLogger(__name__)

# Bump whenever the JSON of an answer can change for the same models and request (this code's
# output format, or the order of its float sums: 3 folds gate factors into weights; 4: integrated gradients
# from the spaces baseline on an adaptive path, with `score_change`; 5: a counterfactual's edited text recorded
# on from the original's recording; 6: integrated gradients' `unresolved_jump` and their stop at it, and the autograd
# sweep's single rows without vmap and its counterfactuals recorded on from the original's kept states; 7: the
# hand-written sweeps' few rows every row at every step, in plain blocks, and the unrolled norms one per step), so immutable URLs and ETags issued before
# can never name the new bytes.
ANSWER_FORMAT = 7
# Below this, gzip's header and the work cost more than the bytes saved.
GZIP_MIN_BYTES = 1024
GZIP_LEVEL = 6
# What a colour can show, and then some: the default precision of connectivity values.
DISPLAY_DIGITS = 4
# Bookkeeping per cached entry beyond its bytes (key, OrderedDict node, Answer object), counted against the limit.
ENTRY_OVERHEAD_BYTES = 512
# The unrolled figure's text: the example sentence's first this many characters (static/figures/vanishing.js).
UNROLLED_EXAMPLE_CHARS = 60


def answer_version(models_digest: str, settings: Settings) -> str:
    """What an answer depends on besides its request: the model files, the answer format and the settings that change values."""
    source = f"{models_digest}:format={ANSWER_FORMAT}:ig_steps={settings.integrated_gradients_steps}"
    return hashlib.sha256(source.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Answer:
    """One response body, its gzip encoding (None when compressing does not pay) and its strong ETag."""

    body: bytes
    gzipped: bytes | None
    etag: str

    @classmethod
    def of(cls, body: bytes, version: str) -> "Answer":
        # mtime=0: the same body always compresses to the same bytes.
        gzipped = gzip.compress(body, GZIP_LEVEL, mtime=0) if len(body) >= GZIP_MIN_BYTES else None
        if gzipped is not None and len(gzipped) >= len(body):
            gzipped = None
        return cls(body, gzipped, f'"{version}-{hashlib.sha256(body).hexdigest()[:24]}"')

    @classmethod
    def of_json(cls, content: object, version: str) -> "Answer":
        return cls.of(json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode(), version)

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gzipped or b"") + ENTRY_OVERHEAD_BYTES


class AnswerCache:
    """Recent answers, least recently used forgotten first, at most `max_bytes` of them (bodies, gzip and bookkeeping).

    Pinned answers (the article's own texts) are never forgotten and do not count
    against the limit: there are a handful of them, fixed at start-up. Used on the
    event loop only, so it needs no lock.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[Hashable, Answer] = OrderedDict()
        self._pinned: dict[Hashable, Answer] = {}

    def __len__(self) -> int:
        return len(self._entries) + len(self._pinned)

    def get(self, key: Hashable) -> Answer | None:
        answer = self._pinned.get(key)
        if answer is not None:
            return answer
        answer = self._entries.get(key)
        if answer is not None:
            self._entries.move_to_end(key)
        return answer

    def put(self, key: Hashable, answer: Answer, pinned: bool = False) -> None:
        if pinned:
            self._pinned[key] = answer
            self._forget(key)
            return
        if key in self._pinned or answer.size > self.max_bytes:
            return
        self._forget(key)
        self._entries[key] = answer
        self.bytes += answer.size
        while self.bytes > self.max_bytes:
            _, oldest = self._entries.popitem(last=False)
            self.bytes -= oldest.size

    def _forget(self, key: Hashable) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old.size


@dataclass(frozen=True)
class ArticleTexts:
    """The texts the article page asks about before the reader does anything (from static/data/paper.json)."""

    example_text: str
    demo_prefix: str
    paper_units: tuple[str, ...]  # the model ids of the paper's units (paper.json's model_ids), which the page shows first
    walkthrough_rows: tuple[tuple[int, str], ...]  # each walkthrough note's position in the example text, and the word there


class Answers:
    """The API's deterministic answers for one engine, cached as bytes; the endpoints' one entry point."""

    def __init__(self, engine: InferenceEngine, pool: InferencePool, settings: Settings, cache: AnswerCache) -> None:
        self.engine = engine
        self.pool = pool
        self.settings = settings
        self.cache = cache
        self.version = answer_version(engine.registry.digest, settings)
        # Computations in flight, so readers asking the same question at once share one.
        self._pending: dict[Hashable, asyncio.Task] = {}

    def models(self, infos: list[ModelInfo]) -> Answer:
        # Unset: what metrics.json does not record (a profile's `sample`) is left out rather than sent as null.
        return Answer.of(json.dumps([info.model_dump(mode="json", exclude_unset=True) for info in infos], separators=(",", ":")).encode(), self.version)

    async def autocomplete(
        self, text: str, models: list[str] | None, top_k: int, positions: Literal["all", "last"], *, pinned: bool = False
    ) -> Answer:
        """The /api/autocomplete answer; raises InputError for a request the models cannot answer."""
        text = prepare_text(text, self.settings.max_text_chars)
        model_ids = list(dict.fromkeys(models or self.engine.model_ids))
        for model_id in model_ids:
            self.engine.model(model_id, field="models")
        key = (self.version, "autocomplete", text, tuple(model_ids), top_k, positions)

        def compute() -> Answer:
            results = {model_id: self.engine.suggest(model_id, text, top_k, positions) for model_id in model_ids}
            response = AutocompleteResponse(text=text, models=results)
            return Answer.of(response.model_dump_json().encode(), self.version)

        # A keystroke (a few ms) never waits behind a connectivity sweep (seconds); a whole text's suggestions
        # (tens of ms, up to a second on a busy machine) would hold keystrokes up, so they only jump the sweeps' queue.
        return await self._answer(key, compute, urgent=positions == "last", soon=positions == "all", pinned=pinned)

    async def connectivity(
        self,
        text: str,
        model: str,
        positions: list[int] | Literal["all"] | None,
        word: str | None,
        method: Method,
        significant_digits: int,
        *,
        pinned: bool = False,
    ) -> Answer:
        """The /api/connectivity answer; raises InputError for a request the models cannot answer."""
        text = prepare_text(text, self.settings.max_text_chars)
        self.engine.model(model)
        resolved = list(range(len(text))) if positions == "all" else positions
        key = (
            self.version,
            "connectivity",
            text,
            model,
            positions if positions in (None, "all") else tuple(positions),
            word,
            method,
            significant_digits,
        )

        def compute() -> Answer:
            rows = self.engine.connectivity(model, text, resolved, word, method, significant_digits)
            response = ConnectivityResponse(text=text, model=model, method=method, rows=rows)
            # Integrated gradients' own fields (score_change, integration_steps) are left out of the other methods' rows.
            return Answer.of(response.model_dump_json(exclude_defaults=True).encode(), self.version)

        return await self._answer(key, compute, urgent=False, soon=False, pinned=pinned)

    async def counterfactual(
        self,
        text: str,
        position: int,
        replace_at: int,
        replace_with: Replacement,
        typed_word: str | None,
        draw: int,
        models: list[str] | None,
        word: str | None,
        method: Method,
        top_k: int,
        significant_digits: int,
    ) -> Answer:
        """The /api/counterfactual answer; raises InputError for a request the models cannot answer."""
        text = prepare_text(text, self.settings.max_text_chars)
        model_ids = list(dict.fromkeys(models or self.engine.model_ids))
        for model_id in model_ids:
            self.engine.model(model_id, field="models")
        vocabulary = self.engine.registry.vocabulary
        edit = edit_word(text, position, replace_at, replace_with, typed_word, draw, vocabulary, self.settings.max_text_chars)
        edited_position = edit.moved(position)
        key = (
            self.version, "counterfactual", text, position, edit.start, edit.edited_text, tuple(model_ids), word, method, top_k, significant_digits
        )

        def compute() -> Answer:
            answers = self.pool.spread([
                partial(self.engine.counterfactual, model_id, text, position, edit.edited_text, edited_position, word, method, top_k, significant_digits)
                for model_id in model_ids
            ])
            results = dict(zip(model_ids, answers))
            replaced = ReplacedWord(start=edit.start, end=edit.end, original=edit.original, replacement=edit.replacement)
            response = CounterfactualResponse(
                text=text, edited_text=edit.edited_text, position=position, edited_position=edited_position, replaced=replaced,
                method=method, models=results,
            )
            return Answer.of(response.model_dump_json().encode(), self.version)

        return await self._answer(key, compute, urgent=False, soon=True, pinned=False)

    async def unrolled(
        self, text: str, model: str, positions: list[int] | Literal["all"] | None, significant_digits: int, *, pinned: bool = False
    ) -> Answer:
        """The /api/unrolled answer; raises InputError for a request the models cannot answer."""
        text = prepare_text(text, self.settings.max_text_chars)
        if len(text) > self.settings.max_unrolled_chars:
            raise InputError(
                "text", f"normalises to {len(text)} characters; unrolled gradients are served up to {self.settings.max_unrolled_chars} "
                "(RNN_MAX_UNROLLED_CHARS)"
            )
        self.engine.model(model)
        resolved = list(range(len(text))) if positions == "all" else positions
        key = (self.version, "unrolled", text, model, positions if positions in (None, "all") else tuple(positions), significant_digits)

        def compute() -> Answer:
            response = self.engine.unrolled(model, text, resolved, significant_digits)
            return Answer.of(response.model_dump_json().encode(), self.version)

        return await self._answer(key, compute, urgent=False, soon=False, pinned=pinned)

    async def _answer(self, key: Hashable, compute: Callable[[], Answer], *, urgent: bool, soon: bool, pinned: bool) -> Answer:
        answer = self.cache.get(key)
        if answer is not None:
            if pinned:
                self.cache.put(key, answer, pinned=True)
            return answer
        task = self._pending.get(key)
        if task is None:
            task = asyncio.ensure_future(self._compute(key, compute, urgent, soon, pinned))
            self._pending[key] = task
        # Shielded: a reader who goes away cancels only their own wait, never the others' computation.
        return await asyncio.shield(task)

    async def _compute(self, key: Hashable, compute: Callable[[], Answer], urgent: bool, soon: bool, pinned: bool) -> Answer:
        try:
            answer = await self.pool.run(compute, urgent=urgent, soon=soon)
            self.cache.put(key, answer, pinned=pinned)
            return answer
        finally:
            del self._pending[key]

    async def warm(self, texts: ArticleTexts) -> None:
        """Compute and pin what the article page asks for before the reader does anything.

        The requests must be the page's own, field for field, so its requests find
        them: static/api.js and the figures ask with these defaults.
        """
        # The units Figures 1, 3 and 4 show first (static/unit-choice.js): the paper's, where any is served, in the server's order;
        # a unit the reader adds is asked about alone.
        shown = [model for model in self.engine.model_ids if model in texts.paper_units] or self.engine.model_ids
        questions = [
            partial(self.autocomplete, texts.example_text, shown, 3, "all", pinned=True),
            partial(self.autocomplete, texts.demo_prefix, shown, 3, "last", pinned=True),
            *(partial(self.autocomplete, texts.example_text, [model], 3, "all", pinned=True) for model in self.engine.model_ids if model not in shown),
            *(
                partial(self.connectivity, texts.example_text, model, "all", None, "gradient", DISPLAY_DIGITS, pinned=True)
                for model in self.engine.model_ids
            ),
            # The walkthrough notes' rows (static/figures/connectivity.js) for the word in the text, which the page asks for
            # where a unit's first guess there is another word; where it is that word, the matrix above holds the row.
            *(
                partial(self.connectivity, texts.example_text, model, [position], word, "gradient", DISPLAY_DIGITS, pinned=True)
                for position, word in texts.walkthrough_rows
                if word in self.engine.registry.vocabulary.ids
                for model in shown
            ),
            # static/figures/vanishing.js opens on the last character of the example sentence's first UNROLLED_EXAMPLE_CHARS.
            *(
                partial(self.unrolled, texts.example_text[:UNROLLED_EXAMPLE_CHARS], model, [UNROLLED_EXAMPLE_CHARS - 1], DISPLAY_DIGITS, pinned=True)
                for model in self.engine.model_ids
            ),
        ]
        for ask in questions:
            try:
                await ask()
            except InputError as error:
                # Settings tighter than the article's texts (RNN_MAX_TEXT_CHARS, RNN_MAX_CONNECTIVITY_WORK): the page is refused those too.
                logger.warning("an article question is not computed ahead, the server's limits refuse it (%s)", error)
