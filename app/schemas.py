"""Request and response bodies of the API; every field is documented in the OpenAPI schema at /docs."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from models.connectivity import Method

MAX_TOP_K = 10
# A colour shows far fewer; 9 gives back every float32 value exactly.
DEFAULT_SIGNIFICANT_DIGITS = 4
MAX_SIGNIFICANT_DIGITS = 9
# A hard ceiling for the schema; the configured RNN_MAX_TEXT_CHARS is checked per request.
MAX_POSITIONS = 100_000


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParameterCounts(BaseModel):
    embedding: int = Field(description="Trained embedding parameters (27 symbols x hidden size; the padding row is fixed at zero).")
    recurrent: int = Field(description="Parameters of the recurrent unit.")
    dense: int = Field(description="Parameters of the output layer (hidden size x vocabulary, plus biases).")


Interval = tuple[float, float]


class ModelMetrics(BaseModel):
    test_cross_entropy: float | None = Field(description="Mean cross-entropy (nats) over the real-word positions of the held-out test split.")
    test_cross_entropy_ci95: Interval | None = Field(None, description="95 % bootstrap interval of `test_cross_entropy`, resampling test sequences.")
    test_accuracy: float | None = Field(
        description="Top-1 word accuracy over the test split's real-word positions (`<unknown>` words left out), 0 to 1."
    )
    test_accuracy_ci95: Interval | None = Field(None, description="95 % bootstrap interval of `test_accuracy`.")
    test_accuracy_every_character: float | None = Field(
        None,
        description="Top-1 word accuracy over every character of the test split, a position whose word is `<unknown>` a miss: "
        "the paper's definition (its code's `tf.metrics.accuracy` and `ContextAccuracy`), 0 to 1.",
    )
    test_accuracy_every_character_ci95: Interval | None = Field(None, description="95 % bootstrap interval of `test_accuracy_every_character`.")
    test_sequences: int | None = Field(None, description="Test sequences the figures cover (25,391: the whole test split).")


class LettersKnownAccuracy(BaseModel):
    top1: list[float | None] = Field(description="Top-1 accuracy per letters known (0 at the space before a word, up to 21 and more).")
    top2: list[float | None] = Field(description="Top-2 accuracy per letters known.")
    top3: list[float | None] = Field(description="Top-3 accuracy per letters known.")
    count: list[int] = Field(description="Test positions per letters known.")


class AccuracyByLettersKnown(LettersKnownAccuracy):
    every_character: LettersKnownAccuracy | None = Field(
        None, description="The same over every character (the paper's definition); the fields above count real-word positions only."
    )


class HistoryPoint(BaseModel):
    model_config = ConfigDict(extra="allow")

    characters: int = Field(description="Training characters seen when the model was evaluated.")
    test_sequences: int | None = Field(None, description="Test sequences evaluated (25,391: the whole test split).")
    cross_entropy: float | None = Field(None, description="Test cross-entropy (nats), real-word positions.")
    accuracy: float | None = Field(None, description="Test top-1 accuracy, real-word positions.")
    accuracy_every_character: float | None = Field(None, description="Test top-1 accuracy over every character (the paper's definition).")
    reach_10: float | None = Field(None, description="Test sample's mean share of connectivity more than 10 characters back.")


class GapBucket(BaseModel):
    model_config = ConfigDict(extra="allow")

    low: int = Field(description="Least characters between the end of the first occurrence and the space before the repeat.")
    high: int | None = Field(description="Most characters between them; null: no upper end.")
    label: str = Field(description="How the bucket is labelled, e.g. `25–59`.")
    cases: int = Field(description="Test sequences with such a repeat in the sample (one case each).")
    gain_space: float | None = Field(description="Mean gain in log-probability (nats) of the word at the repeat's space, with its first occurrence "
                                     "against with it swapped for another word of its length.")
    gain_space_ci95: Interval | None = Field(description="95 % bootstrap interval of `gain_space`, resampling cases.")
    gain_first_letter: float | None = Field(description="The same gain at the repeat's first letter.")
    gain_first_letter_ci95: Interval | None = Field(description="95 % bootstrap interval of `gain_first_letter`.")


class Intervention(BaseModel):
    model_config = ConfigDict(extra="allow")

    method: str = Field(description="What is changed in the text.")
    buckets: list[GapBucket] = Field(description="The copy test's result per gap between the two occurrences.")
    example: dict[str, Any] = Field(description="The example sentence's second \"grammar\": p(grammar) with the first one and with it swapped.")


class MemoryBucket(BaseModel):
    low: int = Field(description="Nearest distance of the bucket, in characters back from the output position (inclusive).")
    high: int = Field(description="Farthest distance of the bucket (inclusive).")
    label: str = Field(description="How the bucket is labelled, e.g. `3–5`.")


class MemoryProfile(BaseModel):
    model_config = ConfigDict(extra="allow")

    rows: int = Field(description="Connectivity rows (output positions) averaged.")
    by_distance: list[float] = Field(description="Mean share of each row's connectivity per distance bucket, in `buckets` order; sums to 1.")
    before_word: float = Field(description="Mean share on characters before the space that starts the word being typed.")
    reach_10: float = Field(description="Mean share on characters more than 10 back.")
    before_word_ci95: Interval | None = Field(None, description="95 % bootstrap interval of `before_word`, resampling test sequences; test only.")
    reach_10_ci95: Interval | None = Field(None, description="95 % bootstrap interval of `reach_10`; test only.")
    by_distance_ci95: list[Interval] | None = Field(None, description="95 % bootstrap interval of each `by_distance` share; test only.")
    sample: dict[str, Any] | None = Field(None, description="How the rows were sampled (seed, sequences, positions); test split only.")


class ModelMemory(BaseModel):
    model_config = ConfigDict(extra="allow")

    buckets: list[MemoryBucket] = Field(description="The distance buckets that `by_distance` follows.")
    test: MemoryProfile | None = Field(None, description="Profile over a sample of the test split.")
    example: MemoryProfile | None = Field(None, description="Profile over every position of the article's example sentence.")


class ModelInfo(BaseModel):
    id: str = Field(description="Model id to use in requests: the checkpoint's file name, e.g. `gru`, `lstm`, `nlstm`, or any installed unit's.")
    name: str = Field(description="Display name, e.g. `Nested LSTM`: the unit's own, unless metrics.json names the model.")
    unit: str = Field(description="Recurrent unit, e.g. `gru`, `lstm`, `nlstm`, or any installed unit.")
    description: str = Field(description="What the unit is, in a sentence or two, from the unit's package.")
    diagram: str | None = Field(description="SVG markup drawing one step of the unit, from the unit's package; null when it brings none.")
    hidden_size: int = Field(description="Width of the embedding and of every recurrent layer.")
    num_layers: int = Field(description="Stacked recurrent layers.")
    depth: int = Field(description="Nesting depth of a Nested LSTM cell (1 for units that do not nest).")
    vocabulary_size: int = Field(description="Real words the model predicts (`<eos>` and `<unknown>` not counted).")
    parameters: ParameterCounts = Field(description="Parameter counts per part, as the paper counts them.")
    metrics: ModelMetrics | None = Field(description="Test metrics from the checkpoint folder's metrics.json; null when it has none.")
    memory: ModelMemory | None = Field(
        None,
        description="How far back the model looks: connectivity shares by distance, from metrics.json's evaluation; null when it has none.",
    )
    accuracy_by_letters_known: AccuracyByLettersKnown | None = Field(
        None, description="Test accuracy by letters of the word known, on both definitions; null when metrics.json has none."
    )
    history: list[HistoryPoint] | None = Field(None, description="Test metrics along training, by characters seen; null when metrics.json has none.")
    intervention: Intervention | None = Field(
        None, description="The copy test: how much an earlier occurrence of a word raises its probability when it comes again."
    )


class Limits(BaseModel):
    max_text_chars: int = Field(description="Longest text accepted, before and after normalisation (RNN_MAX_TEXT_CHARS).")
    max_top_k: int = Field(description="Most suggestions per position an autocomplete request may ask for.")
    max_connectivity_work: int = Field(
        description="Largest connectivity request, in row-steps: for each requested row its position + 1, times `integrated_gradients_steps` "
        "for integrated gradients (RNN_MAX_CONNECTIVITY_WORK)."
    )
    integrated_gradients_steps: int = Field(
        description="Steps integrated gradients start with (RNN_INTEGRATED_GRADIENTS_STEPS); steps are added where the sum misses the "
        "score change, as many as the rest of `max_connectivity_work` allows."
    )
    full_matrix_chars: int = Field(
        description="Longest normalised text whose full connectivity matrix (`positions: all`) is served for `gradient` and "
        "`gradient_x_input`: the largest T with T(T+1)/2 <= `max_connectivity_work`, and at most `max_text_chars`."
    )
    integrated_gradients_full_matrix_chars: int = Field(
        description="The same for `integrated_gradients`: the largest T with T(T+1)/2 x `integrated_gradients_steps` <= "
        "`max_connectivity_work`, and at most `max_text_chars`."
    )
    max_unrolled_chars: int = Field(
        description="Longest normalised text whose unrolled gradient norms (/api/unrolled) are served (RNN_MAX_UNROLLED_CHARS)."
    )


class Health(BaseModel):
    status: Literal["ok"] = Field(description="`ok` once every model is loaded.")
    models: list[str] = Field(description="Ids of the loaded models.")


class AutocompleteRequest(StrictModel):
    text: str = Field(
        description="Any text; it is normalised as in training (lowercase a-z, digits spelled out, one leading space). "
        "At most RNN_MAX_TEXT_CHARS (default 1,000) characters before and after normalisation, with at least one letter.",
        examples=["The quick brown fox"],
    )
    models: list[str] | None = Field(
        None, min_length=1, max_length=16, description="Model ids to ask; default: every loaded model."
    )
    top_k: int = Field(3, ge=1, le=MAX_TOP_K, description=f"Suggestions per position, 1 to {MAX_TOP_K}.")
    positions: Literal["all", "last"] = Field(
        "all", description="`all`: suggestions at every position; `last`: only at the last character (fast path for typing)."
    )


class Suggestion(BaseModel):
    word: str = Field(description="A vocabulary word.")
    probability: float = Field(description="The model's probability of the word, in (0, 1], among real words (`<eos>` and `<unknown>` excluded).")


class PositionSuggestions(BaseModel):
    position: int = Field(description="Index into the normalised text (0 is its leading space).")
    char: str = Field(description="The character at that position.")
    suggestions: list[Suggestion] = Field(description="The top_k words for the word being typed at this position, most probable first.")


class AutocompleteResponse(BaseModel):
    text: str = Field(description="The normalised text that positions index.")
    models: dict[str, list[PositionSuggestions]] = Field(description="For each requested model id, its suggestions by position.")


class ConnectivityRequest(StrictModel):
    text: str = Field(
        description="Any text, normalised as for autocomplete (same length limits).", examples=["The quick brown fox"]
    )
    model: str = Field(description="Model id, e.g. `gru`.", examples=["gru"])
    positions: list[StrictInt] | Literal["all"] | None = Field(
        None,
        max_length=MAX_POSITIONS,
        description="Output positions (indices into the normalised text) to explain: a list, `all`, or omitted for the last position. "
        "Large requests are refused beyond RNN_MAX_CONNECTIVITY_WORK row-steps.",
    )
    word: str | None = Field(
        None,
        max_length=64,
        description="The vocabulary word whose logit is explained at every requested position; default: each position's top-1 suggestion.",
    )
    method: Method = Field(
        "gradient",
        description="`gradient`: the paper's measure, sum over the 28 input symbols v of (g . E_v)^2 with g the logit's gradient at the "
        "embedding output; `gradient_x_input`: |g . e|; `integrated_gradients`: signed attributions from the baseline of the text with every "
        "letter replaced by a space (so spaces get 0), which sum to `score_change` up to `completeness_error`.",
    )
    significant_digits: int = Field(
        DEFAULT_SIGNIFICANT_DIGITS,
        ge=1,
        le=MAX_SIGNIFICANT_DIGITS,
        description=f"Significant decimal digits of each connectivity value, 1 to {MAX_SIGNIFICANT_DIGITS}; "
        f"{DEFAULT_SIGNIFICANT_DIGITS} is far finer than a colour shows, {MAX_SIGNIFICANT_DIGITS} gives every float32 value as computed.",
    )


class ConnectivityRow(BaseModel):
    position: int = Field(description="The output position explained.")
    word: str = Field(description="The word whose logit is explained.")
    connectivity: list[float] = Field(
        description="One value per character of the normalised text from 0 to `position` (position + 1 values): later characters "
        "cannot influence this output, so their 0s are left out. Rounded to the request's `significant_digits`."
    )
    completeness_error: float | None = Field(
        description="Integrated gradients only: |sum of the row - `score_change`|, what the quadrature misses; null otherwise."
    )
    score_change: float | None = Field(
        None,
        description="Integrated gradients only: the word's logit at the text minus its logit at the baseline (the text with every letter "
        "replaced by a space), which the row sums to up to `completeness_error`; null otherwise.",
    )
    integration_steps: int | None = Field(
        None,
        description="Integrated gradients only: the gradients summed along the path, `integrated_gradients_steps` at first and more "
        "where the sum missed (within the work limit); null otherwise.",
    )
    unresolved_jump: float | None = Field(
        None,
        description="Integrated gradients only: how far the score moves, beyond what the gradients there say, within stretches of the "
        "path that cannot be cut finer (their ends are neighbouring float32 inputs): a jump no number of steps resolves, which "
        "`completeness_error` includes; 0 when there is none, null for the other methods.",
    )


class ConnectivityResponse(BaseModel):
    text: str = Field(description="The normalised text that positions index.")
    model: str = Field(description="The model id.")
    method: Method = Field(description="The method used.")
    rows: list[ConnectivityRow] = Field(description="One row per requested position, in request order.")


# Cacheable GET forms of the two questions: the same answers, with every field in the query string.
VERSION_DESCRIPTION = (
    "The answer version, from the `X-Answers-Version` header of any API answer. With the current version the URL names one answer "
    "for good and is served `immutable`, so browsers, proxies and CDNs keep it; an older version is redirected (307) to the current one."
)


class AnswerQuery(StrictModel):
    """A question asked in a GET query string: the POST form's fields, and the answer version the URL names."""

    v: str | None = Field(None, max_length=64, description=VERSION_DESCRIPTION)


class AutocompleteQuery(AnswerQuery):
    text: str = Field(description=AutocompleteRequest.model_fields["text"].description, examples=["The quick brown fox"])
    models: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+){0,15}$", description="Comma-separated model ids; default: every loaded model."
    )
    top_k: int = Field(3, ge=1, le=MAX_TOP_K, description=f"Suggestions per position, 1 to {MAX_TOP_K}.")
    positions: Literal["all", "last"] = Field("all", description=AutocompleteRequest.model_fields["positions"].description)


class ConnectivityQuery(AnswerQuery):
    text: str = Field(description=ConnectivityRequest.model_fields["text"].description, examples=["The quick brown fox"])
    model: str = Field(description="Model id, e.g. `gru`.", examples=["gru"])
    positions: str | None = Field(
        None,
        max_length=20_000,
        pattern=r"^(all|[0-9]{1,6}(,[0-9]{1,6})*)$",
        description="`all`, comma-separated output positions (e.g. `3,7`), or omitted for the last position; as in the POST form.",
    )
    word: str | None = Field(None, max_length=64, description=ConnectivityRequest.model_fields["word"].description)
    method: Method = Field("gradient", description=ConnectivityRequest.model_fields["method"].description)
    significant_digits: int = Field(
        DEFAULT_SIGNIFICANT_DIGITS,
        ge=1,
        le=MAX_SIGNIFICANT_DIGITS,
        description=ConnectivityRequest.model_fields["significant_digits"].description,
    )


# The paper's claims re-tested (app/claims.py): GET /api/claims, and the article's "What holds up" table.
Verdict = Literal["holds", "fails", "mixed", "untested"]
NumberFormat = Literal["percent", "points", "count", "nats"]


class ClaimNumber(BaseModel):
    group: str | None = Field(default=None, description="What the numbers of a run with the same group measure, e.g. `reach-10`; null for one alone.")
    label: str = Field(description="What the number is within its group, e.g. `GRU`, or `“learning”` (a suggestion's probability).")
    value: float = Field(description="The number: a share 0 to 1 (`percent`), a difference of shares (`points`), a count, or nats.")
    ci95: list[float] | None = Field(default=None, description="Its 95 % bootstrap interval [low, high] from metrics.json; null when it has none.")
    format: NumberFormat = Field(description="How the page writes it (app/formatting.py, static/format.js).")
    source: str | None = Field(
        description="Where it comes from: `metrics.json:<dotted path>` (a difference: `<source> - <source>`), `paper.json:<path>`, "
        "`paper/<file>.json:<path>` (the paper's published data), `live` (the served models' answers on the example sentence), "
        "or null when computed from published rows."
    )


class ClaimEvidence(BaseModel):
    numbers: list[ClaimNumber] = Field(description="The numbers the evidence consists of.")
    note: str | None = Field(default=None, description="What the numbers are measured on, where it needs saying.")


class Claim(BaseModel):
    id: str = Field(description="Stable id of the claim, e.g. `gru-longest-context`.")
    claim: str = Field(description="The paper's claim, in a sentence.")
    rule: str = Field(description="How the verdict is computed, in words.")
    verdict: Verdict = Field(description="The rule's outcome; `untested` when metrics.json or the served models lack what it needs.")
    reason: str = Field(description="Which parts of the rule hold, or what is missing.")
    paper: ClaimEvidence = Field(description="The paper's evidence, from its published data.")
    example: ClaimEvidence = Field(description="Ours on the example sentence.")
    test: ClaimEvidence = Field(description="Ours on the test split, with 95 % intervals where metrics.json has them.")


class PaperComparison(BaseModel):
    id: str = Field(description="Model id of our unit, e.g. `gru`.")
    name: str = Field(description="The unit's name, as the paper gives it.")
    accuracy: ClaimNumber = Field(description="Our top-1 test accuracy counted at every character, the paper's definition, with its interval.")
    paper_accuracy: ClaimNumber = Field(description="The paper's published top-1 test accuracy (text8's test split).")
    difference: ClaimNumber = Field(description="Ours minus the paper's, in points.")
    direction: Literal["above", "below", "within"] = Field(
        description="Ours against the paper's: `within` when the paper's figure lies inside our 95 % interval; without an interval, "
        "by the values alone."
    )
    width: int | None = Field(description="Our unit's width (hidden size), from metrics.json's config.")
    paper_width: int = Field(description="The paper's unit's width.")


class ClaimsReport(BaseModel):
    claims: list[Claim] = Field(description="One row per claim, in the article's order.")
    comparisons: list[PaperComparison] = Field(
        description="Our every-character test accuracy beside the paper's, for each unit the paper trained that metrics.json records."
    )
    paper_width: int | None = Field(description="The width (hidden size) of the paper's units; null when its data could not be read.")
    problem: str | None = Field(default=None, description="Why some or all claims could not be re-tested (the paper's data or the live models unavailable).")


# A counterfactual in Figure 4 (POST/GET /api/counterfactual): one earlier word of the text replaced, each unit's guesses and row again.
Replacement = Literal["other_word", "typed_word", "spaces"]
MAX_TYPED_WORD_CHARS = 40
MAX_DRAW = 999
MODEL_LIST_PATTERN = r"^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+){0,15}$"


class CounterfactualRequest(StrictModel):
    text: str = Field(description="Any text, normalised as for autocomplete (same length limits).", examples=["the cat sat on the mat"])
    position: int = Field(ge=0, description="The output position whose guesses are compared: an index into the normalised text.", examples=[19])
    replace_at: int = Field(
        ge=0,
        description="Any letter of the word to replace (an index into the normalised text); the word must end before `position`, "
        "as a unit reads forwards.",
        examples=[5],
    )
    replace_with: Replacement = Field(
        "other_word",
        description="`other_word`: another vocabulary word of the same length, drawn by the server (`draw` picks another); "
        "`typed_word`: `typed_word`; `spaces`: as many spaces as the word has letters.",
    )
    typed_word: str | None = Field(
        None, max_length=MAX_TYPED_WORD_CHARS, description="The replacement for `typed_word`: letters only, any case.", examples=["dog"]
    )
    draw: int = Field(0, ge=0, le=MAX_DRAW, description=f"Which same-length word `other_word` draws, 0 to {MAX_DRAW}.")
    models: list[str] | None = Field(None, min_length=1, max_length=16, description="Model ids to ask; default: every loaded model.")
    word: str | None = Field(
        None,
        max_length=64,
        description="The vocabulary word whose probability is compared and whose connectivity row is given; default: each model's own "
        "first guess at `position` in the original text.",
    )
    method: Method = Field("gradient", description="The connectivity method of the edited text's row, as for /api/connectivity.")
    top_k: int = Field(3, ge=1, le=MAX_TOP_K, description=f"Guesses per model before and after, 1 to {MAX_TOP_K}.")
    significant_digits: int = Field(
        DEFAULT_SIGNIFICANT_DIGITS,
        ge=1,
        le=MAX_SIGNIFICANT_DIGITS,
        description=ConnectivityRequest.model_fields["significant_digits"].description,
    )


class ReplacedWord(BaseModel):
    start: int = Field(description="Index of the replaced word's first letter in the normalised text.")
    end: int = Field(description="Index just past its last letter.")
    original: str = Field(description="The word as it was.")
    replacement: str = Field(description="What replaced it (letters, or spaces).")


class ModelCounterfactual(BaseModel):
    word: str = Field(description="The word compared: the model's first guess at `position` in the original text, or the request's `word`.")
    before: list[Suggestion] = Field(description="The model's top guesses at `position` in the original text.")
    after: list[Suggestion] = Field(description="Its top guesses at `edited_position` in the edited text.")
    probability_before: float = Field(description="The probability of `word` at `position` in the original text (among real words).")
    probability_after: float = Field(description="The probability of `word` at `edited_position` in the edited text.")
    change_nats: float = Field(description="log `probability_after` - log `probability_before`, in nats: negative when the edit lowers it.")
    connectivity: ConnectivityRow = Field(description="The edited text's connectivity row at `edited_position` for `word`.")


class CounterfactualResponse(BaseModel):
    text: str = Field(description="The normalised original text.")
    edited_text: str = Field(description="The text with the word replaced (not normalised again: spaces stay as they are).")
    position: int = Field(description="The output position in the original text.")
    edited_position: int = Field(description="The same character in the edited text (moved when the replacement's length differs).")
    replaced: ReplacedWord = Field(description="The word replaced and its replacement.")
    method: Method = Field(description="The connectivity method of the rows.")
    models: dict[str, ModelCounterfactual] = Field(description="For each requested model id, its guesses before and after and its new row.")


class CounterfactualQuery(AnswerQuery):
    text: str = Field(description=CounterfactualRequest.model_fields["text"].description, examples=["the cat sat on the mat"])
    position: int = Field(ge=0, description=CounterfactualRequest.model_fields["position"].description, examples=[19])
    replace_at: int = Field(ge=0, description=CounterfactualRequest.model_fields["replace_at"].description, examples=[5])
    replace_with: Replacement = Field("other_word", description=CounterfactualRequest.model_fields["replace_with"].description)
    typed_word: str | None = Field(None, max_length=MAX_TYPED_WORD_CHARS, description=CounterfactualRequest.model_fields["typed_word"].description)
    draw: int = Field(0, ge=0, le=MAX_DRAW, description=CounterfactualRequest.model_fields["draw"].description)
    models: str | None = Field(None, pattern=MODEL_LIST_PATTERN, description="Comma-separated model ids; default: every loaded model.")
    word: str | None = Field(None, max_length=64, description=CounterfactualRequest.model_fields["word"].description)
    method: Method = Field("gradient", description=CounterfactualRequest.model_fields["method"].description)
    top_k: int = Field(3, ge=1, le=MAX_TOP_K, description=CounterfactualRequest.model_fields["top_k"].description)
    significant_digits: int = Field(
        DEFAULT_SIGNIFICANT_DIGITS, ge=1, le=MAX_SIGNIFICANT_DIGITS, description=ConnectivityRequest.model_fields["significant_digits"].description
    )


# The vanishing gradient, unrolled (POST/GET /api/unrolled): gradient norms by layer and step, models/unrolled.py.
class UnrolledRequest(StrictModel):
    text: str = Field(
        description="Any text, normalised as for autocomplete; at most RNN_MAX_UNROLLED_CHARS (default 100) characters once normalised.",
        examples=["the cat sat on the mat"],
    )
    model: str = Field(description="Model id, e.g. `rnn`.", examples=["gru"])
    positions: list[StrictInt] | Literal["all"] | None = Field(
        None,
        max_length=MAX_POSITIONS,
        description="Output positions to explain: a list, `all`, or omitted for the last position; refused beyond "
        "RNN_MAX_CONNECTIVITY_WORK row-steps, counted as for /api/connectivity.",
    )
    significant_digits: int = Field(
        DEFAULT_SIGNIFICANT_DIGITS, ge=1, le=MAX_SIGNIFICANT_DIGITS, description="Significant decimal digits of each norm, 1 to 9."
    )


class UnrolledRow(BaseModel):
    position: int = Field(description="The output position p.")
    word: str = Field(description="The word whose score S is differentiated: the model's first guess at p.")
    input: list[float] = Field(description="|| dS / e[t] || for the embedding output e[t] at each step t from 0 to p (p + 1 values).")
    layers: list[list[float]] = Field(
        description="Per recurrent layer, bottom first: || dS / z[t] || at each step t from 0 to p, z[t] being everything the layer "
        "hands on after step t (its output, and the rest of its state, such as an LSTM's memory cell)."
    )


class UnrolledResponse(BaseModel):
    text: str = Field(description="The normalised text that positions index.")
    model: str = Field(description="The model id.")
    layers: int = Field(description="Recurrent layers in each row's `layers`.")
    layers_found: bool = Field(
        description="Whether the unit's own layers were found; false: a plug-in unit that shows none is one layer, the whole unit "
        "(see models/unrolled.py for how a unit shows its layers)."
    )
    rows: list[UnrolledRow] = Field(description="One row per requested position, in request order.")


class UnrolledQuery(AnswerQuery):
    text: str = Field(description=UnrolledRequest.model_fields["text"].description, examples=["the cat sat on the mat"])
    model: str = Field(description="Model id, e.g. `rnn`.", examples=["gru"])
    positions: str | None = Field(
        None, max_length=20_000, pattern=r"^(all|[0-9]{1,6}(,[0-9]{1,6})*)$", description="`all`, comma-separated positions, or omitted for the last."
    )
    significant_digits: int = Field(
        DEFAULT_SIGNIFICANT_DIGITS, ge=1, le=MAX_SIGNIFICANT_DIGITS, description=UnrolledRequest.model_fields["significant_digits"].description
    )
