"""Request and response bodies of the API; every field is documented in the OpenAPI schema at /docs."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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


class ModelMetrics(BaseModel):
    test_cross_entropy: float | None = Field(description="Mean cross-entropy (nats) on the held-out test split.")
    test_accuracy: float | None = Field(description="Top-1 word accuracy on the held-out test split, 0 to 1.")


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


class Limits(BaseModel):
    max_text_chars: int = Field(description="Longest text accepted, before and after normalisation (RNN_MAX_TEXT_CHARS).")
    max_top_k: int = Field(description="Most suggestions per position an autocomplete request may ask for.")
    max_connectivity_work: int = Field(
        description="Largest connectivity request, in row-steps: for each requested row its position + 1, times `integrated_gradients_steps` "
        "for integrated gradients (RNN_MAX_CONNECTIVITY_WORK)."
    )
    integrated_gradients_steps: int = Field(description="Riemann steps of integrated gradients (RNN_INTEGRATED_GRADIENTS_STEPS).")
    full_matrix_chars: int = Field(
        description="Longest normalised text whose full connectivity matrix (`positions: all`) is served for `gradient` and "
        "`gradient_x_input`: the largest T with T(T+1)/2 <= `max_connectivity_work`, and at most `max_text_chars`."
    )
    integrated_gradients_full_matrix_chars: int = Field(
        description="The same for `integrated_gradients`: the largest T with T(T+1)/2 x `integrated_gradients_steps` <= "
        "`max_connectivity_work`, and at most `max_text_chars`."
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
    positions: list[int] | Literal["all"] | None = Field(
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
        "embedding output; `gradient_x_input`: |g . e|; `integrated_gradients`: signed attributions from the all-padding (zero embedding) "
        "baseline, which sum to the logit difference up to `completeness_error`.",
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
        description="Integrated gradients only: |sum of the row - (logit at the text - logit at the all-padding baseline)|; null otherwise."
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


class AutocompleteQuery(StrictModel):
    text: str = Field(description=AutocompleteRequest.model_fields["text"].description, examples=["The quick brown fox"])
    models: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+){0,15}$", description="Comma-separated model ids; default: every loaded model."
    )
    top_k: int = Field(3, ge=1, le=MAX_TOP_K, description=f"Suggestions per position, 1 to {MAX_TOP_K}.")
    positions: Literal["all", "last"] = Field("all", description=AutocompleteRequest.model_fields["positions"].description)
    v: str | None = Field(None, max_length=64, description=VERSION_DESCRIPTION)


class ConnectivityQuery(StrictModel):
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
    v: str | None = Field(None, max_length=64, description=VERSION_DESCRIPTION)
