"""The FastAPI application: `app.main:app`, or `create_app(settings)` for a custom configuration."""

import gc
import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.answers import Answer, AnswerCache, Answers, ArticleTexts
from app.claims import Claims, word_at
from app.describe import describe_limits, describe_models
from app.engine import InferenceEngine, InputError
from app.http import CachedStaticFiles, static_cache_control
from app.middleware import BodySizeLimitMiddleware, SecurityHeadersMiddleware
from app.pool import InferencePool, ServerBusy, configure_process
from app.registry import load_registry
from app.routers import api, pages
from app.routers.pages import TEMPLATES_DIR
from app.settings import PROJECT_ROOT, Settings, load_settings

logger = logging.getLogger("app")

STATIC_DIR = PROJECT_ROOT / "static"
D3_DIR = PROJECT_ROOT / "node_modules" / "d3" / "dist"
# The article's own texts (example sentence, walkthrough), as the page reads them, and the paper's published data.
PAPER_DATA = STATIC_DIR / "data" / "paper.json"
# The autocomplete demo's starting prefix (app/demo_prefix.py), which Figure 3 opens on.
DEMO_DATA = STATIC_DIR / "data" / "demo.json"


def article_texts(paper_path: Path = PAPER_DATA, demo_path: Path = DEMO_DATA) -> ArticleTexts | None:
    """The texts the article asks about on load, or None when the page's data is not there (nothing to warm)."""
    try:
        paper = json.loads(paper_path.read_text())
        example_text = paper["connectivity"]["example_text"]
        # The numbered steps' positions; the other entries ("inline", "hero_links") are links, which ask nothing.
        steps = {key: value for key, value in paper["connectivity"]["walkthrough_indices"].items() if key.isdigit()}
        return ArticleTexts(
            example_text=example_text,
            demo_prefix=json.loads(demo_path.read_text())["prefix"],
            paper_units=tuple(paper["model_ids"]["names"]),
            walkthrough_rows=tuple((position, word_at(example_text, position).word) for position in sorted(steps.values())),
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
        logger.warning("%s or %s: the article's texts are not computed ahead (%s)", paper_path, demo_path, error)
        return None


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
        state_cache_bytes=settings.state_cache_bytes,
        integrated_gradients_steps=settings.integrated_gradients_steps,
        max_connectivity_work=settings.max_connectivity_work,
        recording_cache_size=settings.recording_cache_size,
    )
    app.state.model_infos = describe_models(registry)
    app.state.pool = InferencePool(
        settings.workers, settings.threads, settings.max_queued_requests, spread_threads=settings.spread_threads
    )
    answers = Answers(app.state.engine, app.state.pool, settings, AnswerCache(settings.response_cache_bytes))
    app.state.answers = answers
    app.state.models_answer = answers.models(app.state.model_infos)
    limits = describe_limits(settings)
    app.state.limits_answer = Answer.of(limits.model_dump_json().encode(), answers.version)
    app.state.rendered_page = pages.RenderedPage(limits=limits.model_dump())
    app.state.claims = Claims(app.state.engine, app.state.pool, PAPER_DATA.parent, settings.max_text_chars, answers.version)
    if settings.warm_article:
        # Everything a page view asks for, ready before the first reader: each process has its own copy.
        if (TEMPLATES_DIR / pages.ARTICLE_TEMPLATE).is_file():
            claims = await app.state.claims.report()
            pages.render_article(app.state.rendered_page, app.state.model_infos, app.state.engine, answers.version, claims)
        for static_files in app.state.static_files:
            static_files.warm()
        if (texts := article_texts()) is not None:
            await answers.warm(texts)
    logger.info("serving %s from %s (models digest %s)", ", ".join(registry.models), settings.checkpoint_dir, registry.digest[:16])
    # What start-up made lives as long as the server (models, vocabulary, the article's answers: some 180,000 objects).
    # A full garbage collection walked all of it and held up a request by some 100 ms, every twenty or so
    # counterfactuals; frozen, collections see only what requests make. Unfrozen at shutdown, for a process that goes on.
    gc.freeze()
    try:
        yield
    finally:
        app.state.pool.shutdown()
        gc.unfreeze()


async def input_error_handler(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, InputError)  # registered for InputError only
    # Same shape as FastAPI's own validation errors, so clients read one format; GET questions are in the query string.
    location = "query" if request.method in ("GET", "HEAD") else "body"
    detail = [{"loc": [location, error.field], "msg": error.message, "type": "value_error"}]
    return JSONResponse({"detail": detail}, status_code=422)


async def server_busy_handler(request: Request, error: Exception) -> JSONResponse:
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
    # Static files first: most of a page view's requests are theirs, and routes are matched in order.
    cache_control = static_cache_control(settings.static_max_age)
    app.state.static_files = [
        CachedStaticFiles(directory=STATIC_DIR, check_dir=False, cache_control=cache_control),
        CachedStaticFiles(directory=D3_DIR, check_dir=False, cache_control=cache_control),
    ]
    app.mount("/static", app.state.static_files[0], name="static")
    app.mount("/vendor/d3", app.state.static_files[1], name="d3")
    app.include_router(api.router)
    app.include_router(pages.router)
    return app


app = create_app()
