"""The article page, rendered once per model set and template version, and sent from memory."""

from dataclasses import dataclass, field

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from app import formatting
from app.answers import Answer
from app.claims import lookup
from app.dependencies import AnswersDep, ClaimsDep, EngineDep, ModelInfosDep
from app.engine import InferenceEngine
from app.http import encoded_response
from app.schemas import ClaimsReport, ModelInfo
from app.settings import PROJECT_ROOT

TEMPLATES_DIR = PROJECT_ROOT / "templates"
ARTICLE_TEMPLATE = "article.html"
PLACEHOLDER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Visualizing memorization in RNNs</title></head>
<body><h1>Visualizing memorization in RNNs</h1>
<p>The article page is not built yet. The API is live: see <a href="/docs">/docs</a>.</p></body></html>
"""

router = APIRouter()
templates = Jinja2Templates(directory=TEMPLATES_DIR)
# The server's prose writes numbers as the figures do (static/format.js): `formatted("percent", 0.553)`, and reads
# metrics.json by dotted paths, as tests do to check them: `lookup(metrics, "models.gru.test.accuracy")`.
templates.env.globals.update(formatted=formatting.formatted, lookup=lookup)


@dataclass
class RenderedPage:
    """The last rendering of the article, the template files' (name, size, mtime) it came from, and the API's limits it carries."""

    limits: dict
    stamp: tuple = ()
    answer: Answer | None = field(default=None)


def templates_stamp() -> tuple:
    # Checked per request (a few stats), so a template added or edited while the server runs is picked up.
    return tuple(sorted((path.name, status.st_size, status.st_mtime_ns) for path in TEMPLATES_DIR.glob("*.html") if (status := path.stat())))


def render_article(page: RenderedPage, model_infos: list[ModelInfo], engine: InferenceEngine, version: str, claims: ClaimsReport) -> Answer:
    """The article as sent, rendered again only when a template changed.

    It depends on the models (their descriptions, metrics and the claims re-tested
    on them) and the templates only, never on the request, so it is rendered without one.
    """
    stamp = templates_stamp()
    if page.answer is None or page.stamp != stamp:
        context = {
            "models": [info.model_dump() for info in model_infos],
            "metrics": engine.registry.metrics,
            "limits": page.limits,
            "claims": claims.model_dump(),
        }
        body = templates.env.get_template(ARTICLE_TEMPLATE).render(context)
        page.stamp, page.answer = stamp, Answer.of(body.encode(), version)
    return page.answer


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def article(request: Request, model_infos: ModelInfosDep, engine: EngineDep, answers: AnswersDep, claims: ClaimsDep) -> Response:
    if not (TEMPLATES_DIR / ARTICLE_TEMPLATE).is_file():
        return HTMLResponse(PLACEHOLDER)
    answer = render_article(request.app.state.rendered_page, model_infos, engine, answers.version, await claims.report())
    return encoded_response(request.headers, request.method, answer, "text/html; charset=utf-8", "no-cache")
