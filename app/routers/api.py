"""The JSON API: models, autocomplete, connectivity, health."""

from dataclasses import asdict

from fastapi import APIRouter

from app.dependencies import EngineDep, ModelInfosDep, PoolDep, SettingsDep
from app.engine import InferenceEngine, prepare_text
from app.schemas import (
    AutocompleteRequest,
    AutocompleteResponse,
    ConnectivityRequest,
    ConnectivityResponse,
    Health,
    ModelInfo,
)

ERROR_RESPONSES = {
    400: {"description": "Request body that cannot be read as JSON at all (not UTF-8, or nested too deeply)."},
    413: {"description": "Request body over RNN_MAX_BODY_BYTES; refused before parsing."},
    503: {"description": "Too many inference requests queued; retry shortly."},
}

router = APIRouter()


@router.get("/healthz", response_model=Health, tags=["service"])
async def healthz(engine: EngineDep) -> Health:
    """200 with the loaded model ids; the server only answers once every model is loaded."""
    return Health(status="ok", models=engine.model_ids)


@router.get("/api/models", response_model=list[ModelInfo], tags=["models"])
async def list_models(model_infos: ModelInfosDep) -> list[ModelInfo]:
    """The loaded models, their sizes and test metrics."""
    return model_infos


def _suggest_all(engine: InferenceEngine, model_ids: list[str], text: str, top_k: int, positions: str) -> dict:
    return {model_id: engine.suggest(model_id, text, top_k, positions) for model_id in model_ids}


@router.post("/api/autocomplete", response_model=AutocompleteResponse, responses=ERROR_RESPONSES, tags=["models"])
async def autocomplete(body: AutocompleteRequest, engine: EngineDep, pool: PoolDep, settings: SettingsDep) -> AutocompleteResponse:
    """Word suggestions at every character (or only the last) of the normalised text, for each requested model.

    With `positions: "last"`, typing one more character costs one recurrent step:
    the states of recently seen texts are cached.
    """
    text = prepare_text(body.text, settings.max_text_chars)
    model_ids = list(dict.fromkeys(body.models or engine.model_ids))
    for model_id in model_ids:
        engine.model(model_id, field="models")
    results = await pool.run(_suggest_all, engine, model_ids, text, body.top_k, body.positions, urgent=body.positions == "last")
    return AutocompleteResponse(
        text=text,
        models={model_id: [asdict(row) for row in rows] for model_id, rows in results.items()},
    )


@router.post("/api/connectivity", response_model=ConnectivityResponse, responses=ERROR_RESPONSES, tags=["models"])
async def connectivity(body: ConnectivityRequest, engine: EngineDep, pool: PoolDep, settings: SettingsDep) -> ConnectivityResponse:
    """How strongly the chosen word's logit at each requested position depends on every earlier character."""
    text = prepare_text(body.text, settings.max_text_chars)
    engine.model(body.model)
    positions = list(range(len(text))) if body.positions == "all" else body.positions
    rows = await pool.run(engine.connectivity, body.model, text, positions, body.word, body.method)
    return ConnectivityResponse(text=text, model=body.model, method=body.method, rows=[asdict(row) for row in rows])

