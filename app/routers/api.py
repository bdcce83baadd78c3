"""The JSON API: models, limits, autocomplete, connectivity, counterfactuals, unrolled gradients, the paper's claims re-tested, health.

Autocomplete and connectivity answer as POST (JSON body) and as GET (query
string) alike; the GET form can be cached by browsers, proxies and CDNs. Every
answer comes from `Answers`, so it is computed once per process and sent as
the same bytes, with a strong ETag, gzip-compressed when the client accepts it.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from app.answers import Answer, Answers
from app.dependencies import AnswersDep, ClaimsDep, EngineDep, LimitsAnswerDep, ModelsAnswerDep, SettingsDep
from app.engine import InputError
from app.http import answer_response
from app.schemas import (
    AutocompleteQuery,
    AutocompleteRequest,
    AutocompleteResponse,
    ClaimsReport,
    ConnectivityQuery,
    ConnectivityRequest,
    ConnectivityResponse,
    CounterfactualQuery,
    CounterfactualRequest,
    CounterfactualResponse,
    Health,
    Limits,
    ModelInfo,
    UnrolledQuery,
    UnrolledRequest,
    UnrolledResponse,
)

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Request body that cannot be read as JSON at all (not UTF-8, or nested too deeply)."},
    412: {"description": "`If-None-Match` names this answer's ETag: the copy the client holds is current (POST cannot answer 304)."},
    413: {"description": "Request body over RNN_MAX_BODY_BYTES; refused before parsing."},
    503: {"description": "Too many inference requests queued; retry shortly."},
}
GET_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "A request the HTTP server cannot read at all, such as a URL too long for it (ask long questions as POST)."},
    304: {"description": "`If-None-Match` names this answer's ETag: the copy the client holds is current."},
    307: {"description": "`v` names an older answer version: the same question with the current `v`."},
    503: ERROR_RESPONSES[503],
}
# A URL with the current version names one answer for good; without it, caches may keep the answer but must revalidate (a cheap 304).
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, no-cache"

router = APIRouter()


@router.get("/healthz", response_model=Health, tags=["service"])
async def healthz(engine: EngineDep) -> Health:
    """200 with the loaded model ids; the server only answers once every model is loaded."""
    return Health(status="ok", models=engine.model_ids)


@router.get("/api/models", response_model=list[ModelInfo], responses={304: GET_RESPONSES[304]}, tags=["models"])
async def list_models(request: Request, models_answer: ModelsAnswerDep, answers: AnswersDep) -> Response:
    """The loaded models, their sizes, test metrics and memory profiles; `X-Answers-Version` names the answers they give."""
    return answer_response(request, models_answer, REVALIDATE, answers.version)


@router.get("/api/limits", response_model=Limits, responses={304: GET_RESPONSES[304]}, tags=["models"])
async def limits(request: Request, limits_answer: LimitsAnswerDep, answers: AnswersDep) -> Response:
    """The limits this server enforces on questions (text length, suggestions, connectivity work), so clients ask only for what it serves."""
    return answer_response(request, limits_answer, REVALIDATE, answers.version)


@router.get("/api/claims", response_model=ClaimsReport, responses={304: GET_RESPONSES[304], 503: GET_RESPONSES[503]}, tags=["models"])
async def claims(request: Request, claims: ClaimsDep, answers: AnswersDep) -> Response:
    """The paper's claims re-tested on the loaded models: each verdict computed by the rule it states, from metrics.json and the
    models' answers on the article's example sentence."""
    return answer_response(request, await claims.answer(), REVALIDATE, answers.version)


@router.post("/api/autocomplete", response_model=AutocompleteResponse, responses=ERROR_RESPONSES, tags=["models"])
async def autocomplete(body: AutocompleteRequest, request: Request, answers: AnswersDep) -> Response:
    """Word suggestions at every character (or only the last) of the normalised text, for each requested model.

    With `positions: "last"`, typing one more character costs one recurrent step:
    the states of recently seen texts are cached.
    """
    answer = await answers.autocomplete(body.text, body.models, body.top_k, body.positions)
    return answer_response(request, answer, None, answers.version)


@router.get("/api/autocomplete", response_model=AutocompleteResponse, responses=GET_RESPONSES, tags=["models"])
async def autocomplete_get(query: Annotated[AutocompleteQuery, Query()], request: Request, answers: AnswersDep) -> Response:
    """The POST form's answer, for a question asked in the query string (`models` comma-separated)."""
    models = query.models.split(",") if query.models else None
    return await _get_answer(request, query.v, answers, lambda: answers.autocomplete(query.text, models, query.top_k, query.positions))


@router.post("/api/connectivity", response_model=ConnectivityResponse, responses=ERROR_RESPONSES, tags=["models"])
async def connectivity(body: ConnectivityRequest, request: Request, answers: AnswersDep) -> Response:
    """How strongly the chosen word's logit at each requested position depends on every earlier character."""
    answer = await answers.connectivity(body.text, body.model, body.positions, body.word, body.method, body.significant_digits)
    return answer_response(request, answer, None, answers.version)


@router.get("/api/connectivity", response_model=ConnectivityResponse, responses=GET_RESPONSES, tags=["models"])
async def connectivity_get(query: Annotated[ConnectivityQuery, Query()], request: Request, answers: AnswersDep, settings: SettingsDep) -> Response:
    """The POST form's answer, for a question asked in the query string (`positions` comma-separated, or `all`)."""
    positions = _query_positions(query.positions, settings.max_text_chars)
    return await _get_answer(
        request, query.v, answers,
        lambda: answers.connectivity(query.text, query.model, positions, query.word, query.method, query.significant_digits),
    )


@router.post("/api/counterfactual", response_model=CounterfactualResponse, responses=ERROR_RESPONSES, tags=["models"])
async def counterfactual(body: CounterfactualRequest, request: Request, answers: AnswersDep) -> Response:
    """Replace one earlier word of the text and compare each model's guesses at a position before and after, with the edited text's
    connectivity row there: whether a model uses the word its gradient reaches."""
    answer = await answers.counterfactual(
        body.text, body.position, body.replace_at, body.replace_with, body.typed_word, body.draw, body.models, body.word, body.method,
        body.top_k, body.significant_digits,
    )
    return answer_response(request, answer, None, answers.version)


@router.get("/api/counterfactual", response_model=CounterfactualResponse, responses=GET_RESPONSES, tags=["models"])
async def counterfactual_get(query: Annotated[CounterfactualQuery, Query()], request: Request, answers: AnswersDep) -> Response:
    """The POST form's answer, for a question asked in the query string (`models` comma-separated)."""
    models = query.models.split(",") if query.models else None
    return await _get_answer(
        request, query.v, answers,
        lambda: answers.counterfactual(
            query.text, query.position, query.replace_at, query.replace_with, query.typed_word, query.draw, models, query.word,
            query.method, query.top_k, query.significant_digits,
        ),
    )


@router.post("/api/unrolled", response_model=UnrolledResponse, responses=ERROR_RESPONSES, tags=["models"])
async def unrolled(body: UnrolledRequest, request: Request, answers: AnswersDep) -> Response:
    """The norm of the gradient of each position's word score with respect to every layer's state at every earlier step: the
    network unrolled over a short text, as the vanishing-gradient figure draws it."""
    answer = await answers.unrolled(body.text, body.model, body.positions, body.significant_digits)
    return answer_response(request, answer, None, answers.version)


@router.get("/api/unrolled", response_model=UnrolledResponse, responses=GET_RESPONSES, tags=["models"])
async def unrolled_get(query: Annotated[UnrolledQuery, Query()], request: Request, answers: AnswersDep, settings: SettingsDep) -> Response:
    """The POST form's answer, for a question asked in the query string (`positions` comma-separated, or `all`)."""
    positions = _query_positions(query.positions, settings.max_text_chars)
    return await _get_answer(request, query.v, answers, lambda: answers.unrolled(query.text, query.model, positions, query.significant_digits))


def _query_positions(positions: str | None, max_positions: int) -> list[int] | Literal["all"] | None:
    """`positions` of a query string: omitted, `all`, or comma-separated indices, at most as many as a text has characters."""
    if positions is None:
        return None
    if positions == "all":
        return "all"
    indices = [int(position) for position in positions.split(",")]
    if len(indices) > max_positions:
        raise InputError("positions", f"lists {len(indices):,} positions; a text has at most {max_positions:,}")
    return indices


async def _get_answer(request: Request, asked: str | None, answers: Answers, ask: Callable[[], Awaitable[Answer]]) -> Response:
    """A GET question's answer: immutable under the version its URL names, or a redirect to the current version when the URL
    names another one (its own answer is gone with its models)."""
    if asked is not None and asked != answers.version:
        query = urlencode([(name, answers.version if name == "v" else value) for name, value in request.query_params.multi_items()])
        return RedirectResponse(f"{request.url.path}?{query}", status_code=307, headers={"Cache-Control": "no-store"})
    return answer_response(request, await ask(), IMMUTABLE if asked == answers.version else REVALIDATE, answers.version)
