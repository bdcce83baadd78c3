"""The FastAPI application: `app.main:app`, or `create_app(settings)` for a custom configuration."""

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from app.engine import InferenceEngine, InputError
from app.middleware import BodySizeLimitMiddleware, SecurityHeadersMiddleware
from app.pool import InferencePool, ServerBusy, configure_process
from app.registry import Registry, load_registry
from app.routers import api, pages
from app.schemas import ModelInfo, ModelMetrics, ParameterCounts
from app.settings import PROJECT_ROOT, Settings, load_settings

logger = logging.getLogger("app")

STATIC_DIR = PROJECT_ROOT / "static"
D3_DIR = PROJECT_ROOT / "node_modules" / "d3" / "dist"


class OptionalStaticFiles(StaticFiles):
    """Static files whose folder may not exist (yet): its URLs then answer 404 instead of failing."""

    async def check_config(self) -> None:
        if self.directory is not None and Path(self.directory).is_dir():
            await super().check_config()


def describe_models(registry: Registry) -> list[ModelInfo]:
    infos = []
    for model in registry.models.values():
        config = model.net.config
        test = (model.metrics or {}).get("test") or {}
        metrics = None
        if model.metrics is not None:
            metrics = ModelMetrics(test_cross_entropy=test.get("cross_entropy"), test_accuracy=test.get("accuracy"))
        infos.append(
            ModelInfo(
                id=model.id,
                name=model.name,
                unit=config.unit,
                hidden_size=config.hidden_size,
                num_layers=config.num_layers,
                depth=config.depth,
                parameters=ParameterCounts(**model.net.parameter_counts()),
                metrics=metrics,
                memory=(model.metrics or {}).get("memory"),
            )
        )
    return infos


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load every model once; a bad checkpoint stops start-up here, before any request is served."""
    settings: Settings = app.state.settings
    configure_process(settings.threads)
    cores = os.cpu_count() or 1
    if settings.workers * settings.threads > cores:
        logger.warning(
            "RNN_WORKERS x RNN_THREADS = %d PyTorch threads on %d cores: oversubscribed, expect much slower inference",
            settings.workers * settings.threads,
            cores,
        )
    registry = load_registry(settings.checkpoint_dir)
    app.state.engine = InferenceEngine(
        registry,
        state_cache_size=settings.state_cache_size,
        integrated_gradients_steps=settings.integrated_gradients_steps,
        max_connectivity_work=settings.max_connectivity_work,
        recording_cache_size=settings.recording_cache_size,
    )
    app.state.model_infos = describe_models(registry)
    app.state.pool = InferencePool(settings.workers, settings.threads, settings.max_queued_requests)
    logger.info("serving %s from %s", ", ".join(registry.models), settings.checkpoint_dir)
    try:
        yield
    finally:
        app.state.pool.shutdown()


async def input_error_handler(request: Request, error: InputError) -> JSONResponse:
    # Same shape as FastAPI's own validation errors, so clients read one format.
    detail = [{"loc": ["body", error.field], "msg": error.message, "type": "value_error"}]
    return JSONResponse({"detail": detail}, status_code=422)


async def server_busy_handler(request: Request, error: ServerBusy) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": "1"})


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for `settings` (default: from the environment); models load when its lifespan starts."""
    settings = settings or load_settings()
    app = FastAPI(
        title="RNN connectivity",
        summary="Live word autocompletion and connectivity for GRU, LSTM and Nested LSTM models.",
        version="0.1.0",
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.settings = settings
    app.add_exception_handler(InputError, input_error_handler)
    app.add_exception_handler(ServerBusy, server_busy_handler)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", OptionalStaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
    app.mount("/vendor/d3", OptionalStaticFiles(directory=D3_DIR, check_dir=False), name="d3")
    return app


app = create_app()
