"""The paper's claims, re-tested on the models served: each verdict is computed by the rule its row states.

Four claims are about the test split and read the checkpoint folder's metrics.json, 95 % bootstrap
intervals included; two are about single positions of the example sentence and read what the live
models answer there. The paper's evidence comes from its published data (static/data/paper.json and
static/data/paper/). Nothing is typed by hand: retraining and evaluating a model again can flip any
verdict. A rule that needs a number the record does not hold gives the verdict "untested".

`evaluate_claims` is a pure function of the three sources; `Claims` asks the models once per process,
on the inference pool, and keeps the report that the article and GET /api/claims serve.
"""

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from app.answers import Answer
from app.engine import InferenceEngine, InputError, prepare_text
from app.pool import InferencePool
from app.schemas import MAX_TOP_K, Claim, ClaimEvidence, ClaimNumber, ClaimsReport, NumberFormat, PaperComparison, Verdict

logger = logging.getLogger(__name__)

# The units the paper's claims are about, by the model ids this server gives them (paper.json's model_ids).
GRU, LSTM, NLSTM = "gru", "lstm", "nlstm"
CLAIM_UNITS = (GRU, LSTM, NLSTM)
# lstm-short-term: letters-known counts from this one on, each with at least this many test words.
MOST_OF_THE_WORD = 7
MIN_WORDS = 1000
# similar-accuracy: "almost the same" is a difference under one percentage point.
SIMILAR_WITHIN = 0.01
TOP_THREE = 3


@dataclass(frozen=True)
class PaperEvidence:
    """The paper's published data: paper.json, its memory profile on the example sentence and its rows there."""

    summary: dict[str, Any]
    memory: dict[str, Any]
    rows: dict[str, list[dict[str, Any]]]

    @classmethod
    def load(cls, directory: Path) -> "PaperEvidence":
        """From static/data; raises OSError or ValueError when a file is missing or not JSON."""
        summary = json.loads((directory / "paper.json").read_text())
        memory = json.loads((directory / "paper" / "memory.json").read_text())
        rows = {unit: json.loads((directory / "paper" / f"{unit}.json").read_text())["positions"] for unit in CLAIM_UNITS}
        return cls(summary, memory, rows)

    @property
    def text(self) -> str:
        return self.summary["connectivity"]["example_text"]

    def position(self, step: str) -> int:
        """The example sentence's position of a walkthrough step ("1": the "e" of "learning", "2": the "g" of the second "grammar")."""
        return int(self.summary["connectivity"]["walkthrough_indices"][step])

    def name(self, unit: str) -> str:
        return self.summary["model_ids"]["names"][unit]

    @property
    def width(self) -> int:
        """The paper's units' width (all three were equally wide)."""
        return self.summary["models"][self.name(GRU)]["units"]


@dataclass(frozen=True)
class ExampleAnswers:
    """What the live models answer on the example sentence.

    `suggestions[model][position]`: the top words with their probabilities, most probable first;
    `rows[model]`: the connectivity row at the "learning" position for the word in the text (absent
    when the vocabulary lacks it); `ranks`: every vocabulary word's id, which orders words by their
    frequency in the training text.
    """

    text: str
    suggestions: dict[str, list[list[tuple[str, float]]]]
    rows: dict[str, list[float]]
    ranks: dict[str, int]

    def top(self, model: str, position: int, count: int = TOP_THREE) -> list[tuple[str, float]]:
        return self.suggestions[model][position][:count]


def ask_example(engine: InferenceEngine, paper: PaperEvidence, max_text_chars: int) -> ExampleAnswers:
    """The live answers the claims need (synchronous: run it on the inference pool)."""
    text = prepare_text(paper.text, max_text_chars)
    models = [model for model in CLAIM_UNITS if model in engine.registry.models]
    suggestions = {
        model: [[(item.word, item.probability) for item in row.suggestions] for row in engine.suggest(model, text, MAX_TOP_K, "all")]
        for model in models
    }
    position = paper.position("1")
    word = word_at(text, position).word
    ranks = engine.registry.vocabulary.ids
    rows = {}
    if word in ranks:
        rows = {model: engine.connectivity(model, text, [position], word, "gradient")[0].connectivity for model in models}
    return ExampleAnswers(text, suggestions, rows, ranks)


@dataclass(frozen=True)
class Word:
    """The word a position of a text belongs to: its characters are text[start:end]; `start - 1` is its space."""

    word: str
    start: int
    end: int


def word_at(text: str, position: int) -> Word:
    """The word being typed at `position`: at a space, the word that follows it (as the targets align)."""
    start = position + 1 if text[position] == " " else text.rfind(" ", 0, position) + 1
    end = text.find(" ", start)
    end = len(text) if end == -1 else end
    return Word(text[start:end], start, end)


def word_before(text: str, word: Word) -> Word:
    """The word before `word`."""
    return word_at(text, text.rfind(" ", 0, word.start - 1))


def first_occurrence(text: str, word: Word) -> Word | None:
    """The first occurrence of `word` earlier in the text, as a whole word."""
    start = 0
    for token in text[: word.start].split(" "):
        if token == word.word:
            return Word(token, start, start + len(token))
        start += len(token) + 1
    return None


def share(row: list[float], span: Word) -> float:
    """The share of a connectivity row on the characters of `span`."""
    total = sum(row)
    return sum(row[span.start : span.end]) / total if total else 0.0


# ----- Numbers with their sources --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    """A number from metrics.json with its 95 % interval (None when the record has none), and where it is."""

    value: float
    ci95: tuple[float, float] | None
    source: str

    def compared_with(self, other: "Estimate") -> Literal["above", "below", "overlap"] | None:
        """Above or below `other` with the intervals apart, overlapping, or None without both intervals."""
        if self.ci95 is None or other.ci95 is None:
            return None
        if self.ci95[0] > other.ci95[1]:
            return "above"
        if self.ci95[1] < other.ci95[0]:
            return "below"
        return "overlap"

    def number(self, label: str, format: NumberFormat = "percent", group: str | None = None) -> ClaimNumber:
        return ClaimNumber(
            group=group, label=label, value=self.value, ci95=list(self.ci95) if self.ci95 else None, format=format, source=self.source
        )


def lookup(record: Any, path: str) -> Any:
    """The value at a dotted path of metrics.json, or None where any step is missing."""
    for key in path.split("."):
        if isinstance(record, dict):
            record = record.get(key)
        elif isinstance(record, list) and key.isdigit() and int(key) < len(record):
            record = record[int(key)]
        else:
            return None
    return record


def estimate(metrics: dict | None, path: str) -> Estimate | None:
    """The number at `path` of metrics.json and its interval at `path` + "_ci95"; None when the number is missing."""
    value = lookup(metrics, path)
    if not isinstance(value, int | float):
        return None
    bounds = lookup(metrics, f"{path}_ci95")
    ci95 = (float(bounds[0]), float(bounds[1])) if isinstance(bounds, list) and len(bounds) == 2 else None
    return Estimate(float(value), ci95, f"metrics.json:{path}")


def live(label: str, value: float, format: NumberFormat = "percent", group: str | None = None) -> ClaimNumber:
    return ClaimNumber(group=group, label=label, value=value, format=format, source="live")


def published(label: str, value: float, path: str, format: NumberFormat = "percent", group: str | None = None) -> ClaimNumber:
    return ClaimNumber(group=group, label=label, value=value, format=format, source=path)


def outcome(parts: list[bool]) -> Verdict:
    """holds when every part holds, fails when none does, mixed otherwise."""
    return "holds" if all(parts) else "fails" if not any(parts) else "mixed"


def listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def quoted(words: list[tuple[str, float]]) -> str:
    return ", ".join(f"“{word}”" for word, _ in words)


# ----- The claims --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sources:
    metrics: dict | None
    example: ExampleAnswers | None
    paper: PaperEvidence

    def name(self, unit: str) -> str:
        return self.paper.name(unit)


def untested(claim: Claim, reason: str) -> Claim:
    return claim.model_copy(update={"verdict": "untested", "reason": reason})


def nlstm_little_context(sources: Sources) -> Claim:
    measures = {"reach_10": "reach-10", "before_word": "share before the current word"}
    claim = Claim(
        id="nlstm-little-context",
        claim="The Nested LSTM hardly uses earlier context.",
        rule="Holds if the Nested LSTM's test reach-10 and its share before the current word are both below the GRU's and the "
        "LSTM's, with the 95 % intervals apart; fails if either is above either unit's with intervals apart; mixed otherwise.",
        verdict="untested",
        reason="",
        paper=ClaimEvidence(
            numbers=[
                published(sources.name(unit), sources.paper.memory["units"][unit][key], f"paper/memory.json:units.{unit}.{key}", group=label)
                for key, label in measures.items()
                for unit in CLAIM_UNITS
            ],
            note="On the example sentence, the only text the paper published connectivity for.",
        ),
        example=ClaimEvidence(numbers=[
            number.number(sources.name(unit), group=label)
            for key, label in measures.items() for unit in CLAIM_UNITS
            if (number := estimate(sources.metrics, f"models.{unit}.memory.example.{key}")) is not None
        ]),
        test=ClaimEvidence(numbers=[]),
    )
    found = {(unit, key): estimate(sources.metrics, f"models.{unit}.memory.test.{key}") for key in measures for unit in CLAIM_UNITS}
    claim.test.numbers = [number.number(sources.name(unit), group=measures[key]) for (unit, key), number in found.items() if number is not None]
    numbers = {place: number for place, number in found.items() if number is not None and number.ci95 is not None}
    if len(numbers) < len(found):
        return untested(claim, "metrics.json lacks a test memory profile with intervals for one of the three units.")
    comparisons = {(key, other): numbers[(NLSTM, key)].compared_with(numbers[(other, key)]) for key in measures for other in (GRU, LSTM)}
    relation = {"below": "below", "above": "above", "overlap": "not apart from"}
    described = [f"{measures[key]} {relation[str(result)]} the {sources.name(other)}'s" for (key, other), result in comparisons.items()]
    if all(result == "below" for result in comparisons.values()):
        verdict: Verdict = "holds"
    elif any(result == "above" for result in comparisons.values()):
        verdict = "fails"
    else:
        verdict = "mixed"
    reason = f"The Nested LSTM's {listed(described)}."
    return claim.model_copy(update={"verdict": verdict, "reason": reason})


def gru_longest_context(sources: Sources) -> Claim:
    claim = Claim(
        id="gru-longest-context",
        claim="The GRU uses long-term context more than the LSTM.",
        rule="Holds if the GRU's test reach-10 is above the LSTM's with the 95 % intervals apart; fails if below with intervals "
        "apart; mixed otherwise.",
        verdict="untested",
        reason="",
        paper=ClaimEvidence(
            numbers=[
                published(sources.name(unit), sources.paper.memory["units"][unit]["reach_10"], f"paper/memory.json:units.{unit}.reach_10", group="reach-10")
                for unit in (GRU, LSTM)
            ],
            note="On the example sentence.",
        ),
        example=ClaimEvidence(numbers=[
            number.number(sources.name(unit), group="reach-10")
            for unit in (GRU, LSTM) if (number := estimate(sources.metrics, f"models.{unit}.memory.example.reach_10")) is not None
        ]),
        test=ClaimEvidence(numbers=[]),
    )
    gru, lstm = (estimate(sources.metrics, f"models.{unit}.memory.test.reach_10") for unit in (GRU, LSTM))
    claim.test.numbers = [number.number(sources.name(unit), group="reach-10") for unit, number in ((GRU, gru), (LSTM, lstm)) if number is not None]
    if gru is None or lstm is None or (result := gru.compared_with(lstm)) is None:
        return untested(claim, "metrics.json lacks the GRU's or the LSTM's test reach-10 with its interval.")
    verdict: Verdict = {"above": "holds", "below": "fails", "overlap": "mixed"}[result]  # type: ignore[assignment]
    words = {"above": "above the LSTM's, intervals apart", "below": "below the LSTM's, intervals apart", "overlap": "within the LSTM's interval"}
    return claim.model_copy(update={"verdict": verdict, "reason": f"The GRU's test reach-10 is {words[result]}."})


def letters_known(text: str, position: int) -> int:
    return position - (text.rfind(" ", 0, position + 1))


def lstm_short_term(sources: Sources) -> Claim:
    curves = sources.paper.summary["accuracy_by_letters_known"]["values"]
    gru_paper, lstm_paper = (curves[sources.name(unit)][0] for unit in (GRU, LSTM))
    # The paper published no word counts: its counts from 7 on where both curves are above 0.
    paper_counts = [k for k in range(MOST_OF_THE_WORD, len(gru_paper)) if gru_paper[k] > 0 and lstm_paper[k] > 0]
    paper_ahead = [k for k in paper_counts if lstm_paper[k] > gru_paper[k]]
    claim = Claim(
        id="lstm-short-term",
        claim="The LSTM is better once most of the word is known.",
        rule=f"For each count of letters known from {MOST_OF_THE_WORD} on with at least {MIN_WORDS:,} test words, compare the GRU's "
        "and the LSTM's top-1 accuracy (every character): holds if the LSTM is ahead at most counts, fails if at none, mixed otherwise.",
        verdict="untested",
        reason="",
        paper=ClaimEvidence(
            numbers=[ClaimNumber(label="counts compared", value=len(paper_counts), format="count", source=None),
                     ClaimNumber(label="LSTM ahead at", value=len(paper_ahead), format="count", source=None)],
            note="Letters-known counts where both published curves are above 0 (the paper gives no word counts).",
        ),
        example=ClaimEvidence(numbers=[]),
        test=ClaimEvidence(numbers=[]),
    )
    if sources.example is not None and all(unit in sources.example.suggestions for unit in (GRU, LSTM)):
        text = sources.example.text
        late = [position for position in range(len(text)) if letters_known(text, position) >= MOST_OF_THE_WORD]
        claim.example.numbers = [live(f"positions with {MOST_OF_THE_WORD} or more letters known", len(late), "count")] + [
            live(sources.name(unit), sum(sources.example.top(unit, p, 1)[0][0] == word_at(text, p).word for p in late), "count", group="right first")
            for unit in (GRU, LSTM)
        ]
    every = {unit: lookup(sources.metrics, f"models.{unit}.accuracy_by_letters_known.every_character") for unit in (GRU, LSTM)}
    if not all(isinstance(curve, dict) and "top1" in curve and "count" in curve for curve in every.values()):
        return untested(claim, "metrics.json lacks the GRU's or the LSTM's every-character accuracy by letters known.")
    gru, lstm = every[GRU], every[LSTM]
    counts = [
        k for k in range(MOST_OF_THE_WORD, min(len(gru["top1"]), len(lstm["top1"])))
        if min(gru["count"][k], lstm["count"][k]) >= MIN_WORDS and gru["top1"][k] is not None and lstm["top1"][k] is not None
    ]
    ahead = [k for k in counts if lstm["top1"][k] > gru["top1"][k]]
    claim.test.numbers = [ClaimNumber(label="counts compared", value=len(counts), format="count", source=None),
                          ClaimNumber(label="LSTM ahead at", value=len(ahead), format="count", source=None)]
    if not counts:
        return untested(claim, f"No letters-known count from {MOST_OF_THE_WORD} on has {MIN_WORDS:,} test words.")
    verdict: Verdict = "holds" if len(ahead) > len(counts) / 2 else "fails" if not ahead else "mixed"
    where = f"at {len(ahead)} of {len(counts)} counts" + (f" ({listed([str(k) for k in ahead])} letters known)" if ahead else "")
    return claim.model_copy(update={"verdict": verdict, "reason": f"The LSTM is ahead {where}."})


def similar_accuracy(sources: Sources) -> Claim:
    results = sources.paper.summary["test_results"]
    gru_paper, lstm_paper = (results[sources.name(unit)]["accuracy"] for unit in (GRU, LSTM))
    claim = Claim(
        id="similar-accuracy",
        claim="The GRU and the LSTM have almost the same overall accuracy.",
        rule="Holds if the GRU's and the LSTM's top-1 accuracies on the test split (every character) differ by less than 1 point; "
        "fails otherwise.",
        verdict="untested",
        reason="",
        paper=ClaimEvidence(numbers=[
            published(sources.name(unit), results[sources.name(unit)]["accuracy"], f"paper.json:test_results.{sources.name(unit)}.accuracy", group="top-1")
            for unit in (GRU, LSTM)
        ] + [ClaimNumber(label="difference", value=gru_paper - lstm_paper, format="points", source=None)], note="On text8's test split."),
        example=ClaimEvidence(numbers=[]),
        test=ClaimEvidence(numbers=[]),
    )
    if sources.example is not None and all(unit in sources.example.suggestions for unit in (GRU, LSTM)):
        text = sources.example.text
        claim.example.numbers = [
            live(sources.name(unit), sum(sources.example.top(unit, p, 1)[0][0] == word_at(text, p).word for p in range(len(text))) / len(text),
                 group="top-1, every character")
            for unit in (GRU, LSTM)
        ]
    gru, lstm = (estimate(sources.metrics, f"models.{unit}.test.accuracy_every_character") for unit in (GRU, LSTM))
    if gru is None or lstm is None:
        return untested(claim, "metrics.json lacks the GRU's or the LSTM's every-character test accuracy.")
    difference = gru.value - lstm.value
    claim.test = ClaimEvidence(
        numbers=[gru.number(sources.name(GRU), group="top-1"), lstm.number(sources.name(LSTM), group="top-1"),
                 ClaimNumber(label="difference", value=difference, format="points", source=f"{gru.source} - {lstm.source}")],
        note="On the test split of our corpus, not text8's.",
    )
    verdict: Verdict = "holds" if abs(difference) < SIMILAR_WITHIN else "fails"
    leader = sources.name(GRU) if difference > 0 else sources.name(LSTM)
    size = "less" if verdict == "holds" else "more"
    return claim.model_copy(update={"verdict": verdict, "reason": f"The {leader} is ahead by {size} than 1 point."})


def learning_at_le(sources: Sources) -> Claim:
    text, position = sources.paper.text, sources.paper.position("1")
    target = word_at(text, position)
    context = word_before(text, target)
    letters = text[target.start : position + 1]
    claim = Claim(
        id="learning-at-le",
        claim=f"At the “{letters[-1]}” of “{target.word}” after “{context.word}”, the GRU and the LSTM suggest “{target.word}”, the GRU "
        f"with more probability and more connectivity on “{context.word}”; the Nested LSTM suggests only frequent words.",
        rule=f"From the live models: (1) “{target.word}” is among the GRU's and the LSTM's top three; (2) the GRU gives it more "
        f"probability than the LSTM (a word outside a model's top ten counts as below its tenth); (3) the GRU's connectivity row for "
        f"“{target.word}” puts a larger share on “{context.word}” than the LSTM's; (4) the Nested LSTM's top three leave “{target.word}” "
        f"out and each is more frequent in the training text. Holds if all four hold, fails if none, mixed otherwise.",
        verdict="untested",
        reason="",
        paper=ClaimEvidence(numbers=[], note=None),
        example=ClaimEvidence(numbers=[]),
        test=ClaimEvidence(numbers=[], note="One position of one sentence: the test split has no counterpart."),
    )
    published_rows = {unit: sources.paper.rows[unit][position] for unit in CLAIM_UNITS}
    claim.paper.numbers = [
        published(f"“{word}”", probability, f"paper/{unit}.json:positions.{position}.probability.{index}", group=f"{sources.name(unit)}'s top three")
        for unit in CLAIM_UNITS for index, (word, probability) in enumerate(zip(published_rows[unit]["predict"], published_rows[unit]["probability"]))
    ] + [
        ClaimNumber(group=f"row on “{context.word}”", label=sources.name(unit), value=share(published_rows[unit]["connectivity"], context),
                    format="percent", source=None)
        for unit in (GRU, LSTM)
    ]
    claim.paper.note = f"The paper's connectivity rows are for “{published_rows[GRU]['target']}”."
    example = sources.example
    if example is None or not all(unit in example.suggestions for unit in CLAIM_UNITS):
        return untested(claim, "The GRU, the LSTM and the Nested LSTM are not all served.")
    claim.example.numbers = [
        live(f"“{word}”", probability, group=f"{sources.name(unit)}'s top three") for unit in CLAIM_UNITS for word, probability in example.top(unit, position)
    ]
    if not example.rows:
        return untested(claim, f"“{target.word}” is not in the models' vocabulary.")
    on_context = {unit: share(example.rows[unit], context) for unit in (GRU, LSTM)}
    claim.example.numbers += [live(sources.name(unit), on_context[unit], group=f"row on “{context.word}”") for unit in (GRU, LSTM)]

    top_ten = {unit: dict(example.suggestions[unit][position]) for unit in (GRU, LSTM)}
    gru_probability = top_ten[GRU].get(target.word)
    # A word outside the LSTM's top ten has less probability than its tenth.
    lstm_probability = top_ten[LSTM].get(target.word, example.suggestions[LSTM][position][-1][1])
    nested = example.top(NLSTM, position)
    rank = example.ranks[target.word]
    parts = {
        f"“{target.word}” is among the GRU's and the LSTM's top three": all(target.word in dict(example.top(unit, position)) for unit in (GRU, LSTM)),
        "the GRU gives it more probability": gru_probability is not None and gru_probability > lstm_probability,
        f"the GRU's row puts a larger share on “{context.word}”": on_context[GRU] > on_context[LSTM],
        f"the Nested LSTM's {quoted(nested)} leave it out and are each more frequent":
            target.word not in dict(nested) and all(example.ranks.get(word, rank) < rank for word, _ in nested),
    }
    numbered = [f"({index}) {description}" for index, description in enumerate(parts, start=1)]
    held = [text for text, holds in zip(numbered, parts.values()) if holds]
    missed = [text for text, holds in zip(numbered, parts.values()) if not holds]
    reason = " ".join(sentence for sentence in (held and f"Holds: {'; '.join(held)}.", missed and f"Does not hold: {'; '.join(missed)}.") if sentence)
    return claim.model_copy(update={"verdict": outcome(list(parts.values())), "reason": reason})


def grammar_recall(sources: Sources) -> Claim:
    text, position = sources.paper.text, sources.paper.position("2")
    target = word_at(text, position)
    first = first_occurrence(text, target)
    distance = position - first.start if first else None
    claim = Claim(
        id="grammar-recall",
        claim=f"At the “{text[position]}” of the second “{target.word}”, the GRU recalls the word it saw {distance} characters earlier "
        "(it is among its top three).",
        rule=f"Holds if “{target.word}” is among the live GRU's top three at that position; fails otherwise.",
        verdict="untested",
        reason="",
        paper=ClaimEvidence(
            numbers=[
                published(f"“{word}”", probability, f"paper/{GRU}.json:positions.{position}.probability.{index}", group=f"{sources.name(GRU)}'s top three")
                for index, (word, probability) in enumerate(zip(sources.paper.rows[GRU][position]["predict"], sources.paper.rows[GRU][position]["probability"]))
            ],
        ),
        example=ClaimEvidence(numbers=[]),
        test=ClaimEvidence(numbers=[]),
    )
    # The copy test on the test split: the bucket of gaps (end of the first occurrence to the second's space) that holds this one.
    gap = target.start - first.end if first else None
    buckets = lookup(sources.metrics, f"models.{GRU}.intervention.buckets") or []
    index, bucket = next(
        ((i, b) for i, b in enumerate(buckets) if gap is not None and b["low"] <= gap and (b.get("high") is None or gap <= b["high"])), (None, None)
    )
    if bucket is not None:
        path = f"models.{GRU}.intervention.buckets.{index}"
        gain = estimate(sources.metrics, f"{path}.gain_first_letter")
        claim.test = ClaimEvidence(
            numbers=[
                ClaimNumber(label="cases", value=bucket["cases"], format="count", source=f"metrics.json:{path}.cases"),
                ClaimNumber(group="in the GRU's top three", label="first occurrence kept", value=bucket["top3_first_letter_with"], format="percent",
                            source=f"metrics.json:{path}.top3_first_letter_with"),
                ClaimNumber(group="in the GRU's top three", label="swapped", value=bucket["top3_first_letter_without"], format="percent",
                            source=f"metrics.json:{path}.top3_first_letter_without"),
                *([gain.number("gain in log-probability", "nats")] if gain else []),
            ],
            note=f"The copy test: words repeated {bucket['label']} characters after their first occurrence, at their first letter.",
        )
    if sources.example is None or GRU not in sources.example.suggestions:
        return untested(claim, "The GRU is not served.")
    claim.example.numbers = [
        live(f"“{word}”", probability, group=f"{sources.name(unit)}'s top three")
        for unit in CLAIM_UNITS if unit in sources.example.suggestions for word, probability in sources.example.top(unit, position)
    ]
    recalled = target.word in dict(sources.example.top(GRU, position))
    reason = f"“{target.word}” is {'' if recalled else 'not '}among the GRU's top three."
    return claim.model_copy(update={"verdict": "holds" if recalled else "fails", "reason": reason})


CLAIMS: tuple[Callable[[Sources], Claim], ...] = (
    nlstm_little_context, gru_longest_context, lstm_short_term, similar_accuracy, learning_at_le, grammar_recall,
)


def evaluate_claims(metrics: dict | None, example: ExampleAnswers | None, paper: PaperEvidence) -> list[Claim]:
    """Every claim's row, its verdict computed from metrics.json and the live answers (None when the models could not be asked)."""
    sources = Sources(metrics, example, paper)
    return [evaluate(sources) for evaluate in CLAIMS]


def compare_with_paper(metrics: dict | None, paper: PaperEvidence) -> list[PaperComparison]:
    """Our every-character test accuracy beside the paper's, for each recorded unit the paper trained."""
    comparisons = []
    for unit, name in paper.summary["model_ids"]["names"].items():
        ours = estimate(metrics, f"models.{unit}.test.accuracy_every_character")
        if ours is None:
            continue
        theirs = paper.summary["test_results"][name]["accuracy"]
        if ours.ci95 is not None and ours.ci95[0] <= theirs <= ours.ci95[1]:
            direction: Literal["above", "below", "within"] = "within"
        else:
            direction = "above" if ours.value > theirs else "below"
        comparisons.append(PaperComparison(
            id=unit,
            name=name,
            accuracy=ours.number(name),
            paper_accuracy=published(name, theirs, f"paper.json:test_results.{name}.accuracy"),
            difference=ClaimNumber(label="difference", value=ours.value - theirs, format="points",
                                   source=f"{ours.source} - paper.json:test_results.{name}.accuracy"),
            direction=direction,
            width=lookup(metrics, f"models.{unit}.config.hidden_size"),
            paper_width=paper.summary["models"][name]["units"],
        ))
    return comparisons


class Claims:
    """The claims report of one engine's models, computed once on the inference pool and then kept, with its answer for the API."""

    def __init__(self, engine: InferenceEngine, pool: InferencePool, paper_directory: Path, max_text_chars: int, version: str) -> None:
        self.engine = engine
        self.pool = pool
        self.paper_directory = paper_directory
        self.max_text_chars = max_text_chars
        self.version = version
        self._report: asyncio.Task[tuple[ClaimsReport, Answer]] | None = None

    async def report(self) -> ClaimsReport:
        return (await self._computed())[0]

    async def answer(self) -> Answer:
        """The report as GET /api/claims sends it."""
        return (await self._computed())[1]

    async def _computed(self) -> tuple[ClaimsReport, Answer]:
        # One computation shared by every reader who asks before it is done; shielded so a reader who goes away cannot
        # cancel it; asked again after a failure (a full queue).
        if self._report is None or (self._report.done() and self._report.exception() is not None):
            self._report = asyncio.ensure_future(self._compute())
        return await asyncio.shield(self._report)

    async def _compute(self) -> tuple[ClaimsReport, Answer]:
        report = await self._evaluate()
        return report, Answer.of(report.model_dump_json().encode(), self.version)

    async def _evaluate(self) -> ClaimsReport:
        try:
            paper = PaperEvidence.load(self.paper_directory)
        except (OSError, ValueError, KeyError) as error:
            logger.warning("%s: the paper's claims are not re-tested (%s)", self.paper_directory, error)
            return ClaimsReport(claims=[], comparisons=[], paper_width=None, problem=f"The paper's published data could not be read ({error}).")
        problem = None
        example = None
        try:
            example = await self.pool.run(ask_example, self.engine, paper, self.max_text_chars)
        except InputError as error:
            problem = f"The live models could not be asked about the example sentence ({error}), so the claims about it are untested."
        metrics = self.engine.registry.metrics
        return ClaimsReport(
            claims=evaluate_claims(metrics, example, paper),
            comparisons=compare_with_paper(metrics, paper),
            paper_width=paper.width,
            problem=problem,
        )
