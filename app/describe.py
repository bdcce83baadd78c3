"""What the server tells clients about itself: its models (GET /api/models) and its limits (GET /api/limits).

Both are fixed once the models are loaded, so the lifespan describes them once.
"""

import logging
import math
from typing import Any

from pydantic import TypeAdapter, ValidationError

from app.registry import Registry
from app.schemas import (
    MAX_TOP_K,
    AccuracyByLettersKnown,
    HistoryPoint,
    Intervention,
    Limits,
    ModelInfo,
    ModelMemory,
    ModelMetrics,
    ParameterCounts,
)
from app.settings import Settings
from models.units import get_unit
from models.vocab import SPECIAL_WORDS

logger = logging.getLogger(__name__)


def from_record(metrics: dict | None, key: str, schema: Any, model_id: str) -> Any:
    """metrics.json's `key` of a model, validated by `schema` (a pydantic model or a TypeAdapter's type); None (and a warning)
    when absent or not in the evaluation's format, so that an older record still serves what it has."""
    value = (metrics or {}).get(key)
    if value is None:
        return None
    try:
        return TypeAdapter(schema).validate_python(value)
    except ValidationError as error:
        logger.warning("metrics.json: the %s of %s is ignored, it is not in the evaluation's format (%s)", key, model_id, error)
        return None


def describe_models(registry: Registry) -> list[ModelInfo]:
    infos = []
    for model in registry.models.values():
        config = model.net.config
        unit = get_unit(config.unit)
        test = (model.metrics or {}).get("test") or {}
        metrics = None
        if model.metrics is not None:
            metrics = ModelMetrics(**{f"test_{key}": test.get(key) for key in (
                "cross_entropy", "cross_entropy_ci95", "accuracy", "accuracy_ci95", "accuracy_every_character",
                "accuracy_every_character_ci95", "sequences")})
        infos.append(
            ModelInfo(
                id=model.id,
                name=model.name,
                unit=config.unit,
                description=unit.description,
                diagram=unit.diagram,
                hidden_size=config.hidden_size,
                num_layers=config.num_layers,
                depth=config.depth,
                vocabulary_size=config.num_words - len(SPECIAL_WORDS),
                parameters=ParameterCounts(**model.net.parameter_counts()),
                metrics=metrics,
                memory=from_record(model.metrics, "memory", ModelMemory, model.id),
                accuracy_by_letters_known=from_record(model.metrics, "accuracy_by_letters_known", AccuracyByLettersKnown, model.id),
                history=from_record(model.metrics, "history", list[HistoryPoint], model.id),
                intervention=from_record(model.metrics, "intervention", Intervention, model.id),
            )
        )
    return infos


def longest_full_matrix(work: int, steps: int, max_text_chars: int) -> int:
    """The largest T with T(T+1)/2 x steps <= work (every row of a T-character text), capped at max_text_chars."""
    rows = work // steps
    return min((math.isqrt(8 * rows + 1) - 1) // 2, max_text_chars)


def describe_limits(settings: Settings) -> Limits:
    """The limits the API enforces, so that clients ask only for what will be served."""
    return Limits(
        max_text_chars=settings.max_text_chars,
        max_top_k=MAX_TOP_K,
        max_connectivity_work=settings.max_connectivity_work,
        integrated_gradients_steps=settings.integrated_gradients_steps,
        full_matrix_chars=longest_full_matrix(settings.max_connectivity_work, 1, settings.max_text_chars),
        integrated_gradients_full_matrix_chars=longest_full_matrix(
            settings.max_connectivity_work, settings.integrated_gradients_steps, settings.max_text_chars
        ),
        max_unrolled_chars=min(settings.max_unrolled_chars, settings.max_text_chars),
    )
