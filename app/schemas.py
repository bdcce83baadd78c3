"""Request and response bodies of the API; every field is documented in the OpenAPI schema at /docs."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_TOP_K = 10
# A hard ceiling for the schema; the configured RNN_MAX_TEXT_CHARS is checked per request.
MAX_POSITIONS = 100_000

Method = Literal["gradient", "gradient_x_input", "integrated_gradients"]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParameterCounts(BaseModel):
    embedding: int = Field(description="Trained embedding parameters (27 symbols x hidden size; the padding row is fixed at zero).")
    recurrent: int = Field(description="Parameters of the recurrent unit.")
    dense: int = Field(description="Parameters of the output layer (hidden size x vocabulary, plus biases).")


class ModelMetrics(BaseModel):
    test_cross_entropy: float | None = Field(description="Mean cross-entropy (nats) on the held-out test split.")
    test_accuracy: float | None = Field(description="Top-1 word accuracy on the held-out test split, 0 to 1.")


class ModelInfo(BaseModel):
    id: str = Field(description="Model id to use in requests, e.g. `gru`, `lstm`, `nlstm`.")
    name: str = Field(description="Display name, e.g. `Nested LSTM`.")
    unit: str = Field(description="Recurrent unit: `gru`, `lstm` or `nlstm`.")
    hidden_size: int = Field(description="Width of the embedding and of every recurrent layer.")
    num_layers: int = Field(description="Stacked recurrent layers.")
    depth: int = Field(description="Nesting depth of a Nested LSTM cell (1 for GRU and LSTM).")
    parameters: ParameterCounts = Field(description="Parameter counts per part, as the paper counts them.")
    metrics: ModelMetrics | None = Field(description="Test metrics from the checkpoint folder's metrics.json; null when it has none.")
    memory: dict | None = Field(
        None,
        description="Memory profile from metrics.json (share of connectivity by distance back, on the test set and the example "
        "sentence); null when it has none.",
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


class ConnectivityRow(BaseModel):
    position: int = Field(description="The output position explained.")
    word: str = Field(description="The word whose logit is explained.")
    connectivity: list[float] = Field(description="One value per character of the normalised text; exactly 0 after `position`.")
    completeness_error: float | None = Field(
        description="Integrated gradients only: |sum of the row - (logit at the text - logit at the all-padding baseline)|; null otherwise."
    )


class ConnectivityResponse(BaseModel):
    text: str = Field(description="The normalised text that positions index.")
    model: str = Field(description="The model id.")
    method: Method = Field(description="The method used.")
    rows: list[ConnectivityRow] = Field(description="One row per requested position, in request order.")
