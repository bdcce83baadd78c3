"""Every number the page takes from a data file is written from it (issue 31, "a test for the class, not only the
instances"): a browser reads each number back, on the tiny checkpoints with a record in the evaluation's full format
and on the shipped models, and holds it against metrics.json, the paper's published data and /api/models; every
share, accuracy, count of characters or power of ten in the prose must name where it comes from. Also here: the
claims table, the intervals and the conclusion as a reader sees them, at 1280 and 375 px.
"""

import json
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import bundled_checkpoints_present, serve_app
from contract_metrics import write_contract_checkpoints

from app.formatting import FORMATS
from app.settings import BUNDLED_CHECKPOINTS

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "static" / "data"
PAPER_FILES = {name: json.loads((DATA / name).read_text()) for name in ("paper.json", "paper/memory.json", "paper/training.json")}
TIMEOUT_MS = 120_000
VIEWPORTS = [(1280, 900), (375, 740)]
# What a number drawn from data looks like in prose: a share with decimals, a power of ten, millions, a count with
# thousands separators, a loss with three decimals. Constants of the text ("95 %", "10 characters") do not match.
DATA_NUMBER = r"\d+\.\d+\s?%|×\s?10|\d+(?:\.\d+)?\s(?:million|billion)|\b\d{1,3}(?:,\d{3})+\b|\b\d\.\d{3}\b"
# Where the page writes numbers from data: its prose, and the figures and tables drawn from metrics.json. The live
# figures (1, 3, 4 and the walkthrough notes, from the API's answers) and read-outs of the hovered value are not.
PROSE = "main > section, #fig-memory .figure-body, #fig-accuracy .figure-body, #fig-training .figure-body, #fig-tables, [data-figure=model-summary]"
NOT_PROSE = ".tooltip, .status, svg, math, .claim-rule, .walkthrough, script"

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def contract_server(tiny_checkpoint_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The tiny checkpoints, a vanilla RNN and a minGRU, with a metrics.json in the evaluation's full format; yields (url, checkpoint folder)."""
    directory = write_contract_checkpoints(tiny_checkpoint_dir, tmp_path_factory.mktemp("contract"), vanilla=True, newer=True)
    with serve_app(directory) as url:
        yield url, directory


def open_rendered(browser, url: str, viewport=(1280, 900)):
    """The article with every figure drawn, the browser cut off from everything but the server."""
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    page.set_default_timeout(TIMEOUT_MS)
    page.console_errors = []
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    server = urlsplit(url).netloc
    page.route("**/*", lambda route: route.continue_() if urlsplit(route.request.url).netloc == server else route.abort())
    page.goto(url + "/")
    for figure in page.locator("[data-figure]").all():
        figure.scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll('[data-figure]')].every((figure) => figure.dataset.rendered === 'true')")
    return page


def sources_of(url: str, directory: Path) -> dict:
    models = httpx.get(url + "/api/models", timeout=60).json()
    return {"metrics.json": json.loads((directory / "metrics.json").read_text()), "api": {"models": {model["id"]: model for model in models}},
            **PAPER_FILES, **{f"paper/{unit}.json": None for unit in ("gru", "lstm", "nlstm")}}


def resolve(source: str, files: dict):
    """The value a data-source names: "metrics.json:models.gru.test.accuracy", or "a - b" for a difference."""
    if " - " in source:
        first, second = source.split(" - ")
        return resolve(first, files) - resolve(second, files)
    name, path = source.split(":", 1)
    value = files[name]
    if value is None:
        value = files[name] = json.loads((DATA / name).read_text())
    for key in path.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def checked_numbers(page, files: dict) -> list[str]:
    """Holds every number that names a data file against it; returns the sources checked."""
    numbers = page.eval_on_selector_all(
        "[data-source]", "spans => spans.map((span) => ({ source: span.dataset.source, format: span.dataset.format, text: span.textContent }))"
    )
    checked = []
    for number in numbers:
        if number["source"] in ("live", "derived"):
            continue
        expected = FORMATS[number["format"]](resolve(number["source"], files))
        assert number["text"] == expected, number
        checked.append(number["source"])
    return checked


def untagged_numbers(page) -> list[str]:
    """Numbers that look drawn from data but sit in no element naming their source."""
    return page.evaluate(
        """([prose, notProse, pattern]) => {
              const found = [];
              for (const root of document.querySelectorAll(prose)) {
                const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
                for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                  const element = node.parentElement;
                  if (element.closest(notProse) || element.closest('[data-source]')) continue;
                  for (const match of node.textContent.matchAll(new RegExp(pattern, 'g'))) found.push(`${match[0]} in “${node.textContent.trim().slice(0, 80)}”`);
                }
              }
              return found;
            }""",
        [PROSE, NOT_PROSE, DATA_NUMBER],
    )


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=["1280px", "375px"])
def test_every_number_from_a_data_file_matches_it_and_every_such_number_names_its_source(browser, contract_server, viewport) -> None:
    url, directory = contract_server
    page = open_rendered(browser, url, viewport)
    checked = checked_numbers(page, sources_of(url, directory))
    # Every part of the page that writes from metrics.json is there: the vanilla RNN's exponents, Table 1's intervals,
    # the claims and the conclusion, the training note's switch, the models box.
    for expected in ("metrics.json:models.rnn.memory.test.by_distance.8", "metrics.json:models.gru.test.accuracy_every_character_ci95",
                     "metrics.json:models.gru.memory.test.reach_10_ci95", "metrics.json:models.gru.legs.0.characters",
                     "metrics.json:models.rnn.test.sequences", "metrics.json:models.gru.test.accuracy_every_character - paper.json:test_results.GRU.accuracy",
                     "paper/memory.json:units.nlstm.reach_10", "api:models.nlstm.parameters.recurrent",
                     # The newer units' section: its reach, the copy test and the point measured at equal characters.
                     "metrics.json:models.mingru.memory.test.reach_10", "metrics.json:models.mingru.intervention.buckets.1.gain_space_ci95",
                     "metrics.json:models.mingru.history.0.reach_10", "metrics.json:models.lstm.history.0.reach_10"):
        assert expected in checked
    assert untagged_numbers(page) == []
    newer = page.locator("#newer-units").inner_text()
    assert "minGRU" in newer and "its training goes on" in newer and "mLSTM" not in newer
    # The vanilla RNN keeps 1.7 × 10⁻²⁹ of its row 101–200 characters back: rounded, never truncated to 10⁻²⁹'s neighbour.
    assert "1.7 × 10⁻²⁹" in page.locator("#vanilla-rnn + p + p").inner_text()
    assert page.console_errors == []
    page.close()


@pytest.mark.skipif(not bundled_checkpoints_present(), reason=f"bundled checkpoints not present in {BUNDLED_CHECKPOINTS}")
def test_the_shipped_models_page_writes_every_number_from_their_record(browser) -> None:
    """The guard against the next retraining: the shipped page holds no number its metrics.json does not."""
    with serve_app(BUNDLED_CHECKPOINTS) as url:
        page = open_rendered(browser, url)
        checked = checked_numbers(page, sources_of(url, BUNDLED_CHECKPOINTS))
        assert len(checked) > 100
        assert untagged_numbers(page) == []
        assert page.console_errors == []
        page.close()


def test_the_browser_formats_numbers_as_the_server_does(browser, contract_server) -> None:
    """static/format.js and app/formatting.py: the same text for the same number, rounded half away from zero."""
    url, _ = contract_server
    page = browser.new_page()
    page.goto(url + "/")
    values = {
        "percent": [0.5534295, 0.0083833, 0.00054, 1.7074157901505907e-29, 0.0, 0.0999, 0.00996, 0.125, 0.00125, 1.0, -0.0201, -0.005],
        "power": [5.94e-3, 4.2e-3, 4.8e-9, 1.7074157901505907e-29, 9.96e-4, 0.0],
        "interval": [[0.551, 0.555], [0.0081, 0.0086], [-0.001, 0.02]],
        "points": [-0.0201, 0.0061, 0.00049],
        "count": [25391, 2048, 4525212],
        "nats": [2.2611792594563456, 2.1175, -0.0404, -0.00004],
        "nats_interval": [[2.25, 2.2705], [-0.0012, 0.0021]],
        "millions": [179997436, 60494272, 119503164],
        "large": [179997436, 96425312, 20000000, 12345],
        "duration": [4750.9, 20577.9, 90, 433.9],
    }
    shown = page.evaluate(
        """async (values) => {
              const { FORMATS } = await import('/static/format.js');
              return Object.fromEntries(Object.entries(values).map(([format, list]) => [format, list.map((value) => FORMATS[format](value))]));
            }""",
        values,
    )
    assert shown == {format: [FORMATS[format](value) for value in values[format]] for format in values}
    assert shown["power"][:3] == ["5.9 × 10⁻³", "4.2 × 10⁻³", "4.8 × 10⁻⁹"]
    assert shown["percent"][1] == "0.84\u00a0%"
    # A negative number's minus is the typeset one, and an interval with a negative end reads "to", not a dash beside it.
    assert shown["nats"][2:] == ["\u22120.040", "\u22120.000"] and shown["nats_interval"][1] == "\u22120.001 to 0.002"
    assert shown["interval"][2] == "\u22120.10 to 2.0\u00a0%"
    page.close()


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=["1280px", "375px"])
def test_claims_intervals_and_conclusion_as_a_reader_sees_them(browser, contract_server, viewport) -> None:
    url, _ = contract_server
    report = httpx.get(url + "/api/claims", timeout=60).json()
    page = open_rendered(browser, url, viewport)
    rows = page.locator("#claims tr[data-claim]")
    assert rows.count() == 6
    shown = page.eval_on_selector_all("#claims tr[data-claim]", "rows => rows.map((row) => [row.dataset.claim, row.dataset.verdict, row.querySelector('.verdict-word').textContent])")
    assert shown == [[claim["id"], claim["verdict"], claim["verdict"]] for claim in report["claims"]]
    # Every row's verdict and evidence on screen, nothing pushed off to the side at either width.
    for index in range(6):
        box = rows.nth(index).locator(".verdict-word").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= viewport[0]
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport[0]
    # Intervals: a bar in Table 1 for each of our units with one, a band in Figure 5 for each unit (the paper's three, the vanilla RNN, minGRU).
    assert page.locator("#fig-tables .error-bar line:not(.axis-line)").count() == 5
    assert page.locator("#fig-memory path.band").count() == 5
    assert page.locator("#memory ~ p", has_text="so the intervals cover the test sample, not the training").count() == 1
    conclusion = page.locator("#conclusion")
    assert conclusion.is_visible()
    verdicts = [claim["verdict"] for claim in report["claims"]]
    assert f"of the paper's 6 claims {verdicts.count('holds')} hold" in conclusion.inner_text().replace("\u00a0", " ")
    assert conclusion.locator("[data-compare]").count() == 3
    # The conclusion is the body's last section before the appendix.
    assert page.evaluate("document.querySelector('#conclusion').nextElementSibling.querySelector('#appendix') !== null")
    assert page.console_errors == []
    page.close()
