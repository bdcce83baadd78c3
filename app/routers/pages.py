"""The article page."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.dependencies import EngineDep, ModelInfosDep, SettingsDep
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


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def article(request: Request, model_infos: ModelInfosDep, engine: EngineDep, settings: SettingsDep) -> HTMLResponse:
    # Checked per request so a template added while the server runs is picked up.
    if not (TEMPLATES_DIR / ARTICLE_TEMPLATE).is_file():
        return HTMLResponse(PLACEHOLDER)
    # The limits the API enforces, so the page asks only for what will be served.
    limits = {
        "max_text_chars": settings.max_text_chars,
        "max_connectivity_work": settings.max_connectivity_work,
        "integrated_gradients_steps": settings.integrated_gradients_steps,
    }
    context = {"models": [info.model_dump() for info in model_infos], "metrics": engine.registry.metrics, "limits": limits}
    return templates.TemplateResponse(request, ARTICLE_TEMPLATE, context)
