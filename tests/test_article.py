"""The article at / in a real browser: Playwright driving Debian's Chromium against a live server.

Every test cuts the browser off from everything but the server, so the page is also checked to work
offline. A full-page screenshot is written to artifacts/article.png.
"""

import copy
import dataclasses
import json
import math
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import numpy as np
import pytest
import torch
from conftest import serve_app
from torch import nn

from app import formatting
from models.checkpoint import load_checkpoint, save_checkpoint
from models.memory import row_shares, word_starts
from models.net import AutocompleteNet
from models.text import CHAR_IDS
from models.units import Unit, register_unit, unregister_unit

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parent.parent
PAPER = json.loads((ROOT / "static" / "data" / "paper.json").read_text())
EXAMPLE_TEXT = PAPER["connectivity"]["example_text"]
WALKTHROUGH = PAPER["connectivity"]["walkthrough_indices"]
UNIT_IDS = ["gru", "lstm", "nlstm"]
SCREENSHOT = ROOT / "artifacts" / "article.png"
# axe-core, a pinned dev dependency (package.json), injected into the page under test.
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# Generous: the server may share this machine with a training run.
TIMEOUT_MS = 90_000

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def page_opener(browser, base_url):
    """Opens paths of the article at `base_url` in fresh pages; collects console errors and any off-server request.

    `before_load(page)`, where given, runs before the page is loaded (to listen to its requests from the first).
    """
    server = urlsplit(base_url).netloc
    pages = []

    def open_path(path="/", viewport=(1200, 900), reduced_motion="no-preference", init_script=None, before_load=None, **options):
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]}, reduced_motion=reduced_motion, **options)
        if init_script:
            page.add_init_script(init_script)
        if before_load:
            before_load(page)
        page.set_default_timeout(TIMEOUT_MS)
        page.console_errors = []
        page.foreign_requests = []
        page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
        page.on("pageerror", lambda error: page.console_errors.append(str(error)))

        def only_the_server(route):
            if urlsplit(route.request.url).netloc == server:
                route.continue_()
            else:
                page.foreign_requests.append(route.request.url)
                route.abort()

        page.route("**/*", only_the_server)
        page.goto(base_url + path)
        pages.append(page)
        return page

    yield open_path
    for page in pages:
        assert page.foreign_requests == [], "the page must work offline"
        page.close()


@pytest.fixture()
def open_page(browser, live_server):
    """Opens a path of the article served from the tiny checkpoints."""
    with page_opener(browser, live_server) as open_path:
        yield open_path


def api(live_server, path, body):
    response = httpx.post(live_server + path, json=body, timeout=60)
    response.raise_for_status()
    return response.json()


def show_connectivity_figure(page, units=3):
    page.locator("#fig-connectivity").scroll_into_view_if_needed()
    # One line per unit: an empty figure must not pass the check vacuously.
    page.wait_for_function(
        """(units) => {
              const lines = [...document.querySelectorAll('#fig-connectivity .char-line')];
              return lines.length === units && lines.every((line) => line.querySelector('.char.selected')?.dataset.connectivity);
            }""",
        arg=units,
    )


def wait_for_all_three(page, selector, predicate, value):
    """Waits until exactly one element per unit matches selector and all satisfy predicate(element, value)."""
    page.wait_for_function(
        f"""(value) => {{
              const elements = [...document.querySelectorAll({json.dumps(selector)})];
              return elements.length === 3 && elements.every((element) => ({predicate})(element, value));
            }}""",
        arg=value,
    )


def selected_positions(page, figure):
    return page.eval_on_selector_all(f"{figure} .char-line", "lines => lines.map(l => Number(l.querySelector('.char.selected')?.dataset.position))")


def row_words(page, figure):
    return page.eval_on_selector_all(f"{figure} .row-word", "words => words.map(w => w.textContent)")


def test_served_html_has_no_inline_code_or_styles(live_server):
    """The CSP allows neither: scripts come from files or are JSON data blocks, styles from the stylesheet."""
    html = httpx.get(live_server + "/", timeout=60).text
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)


def test_page_loads_offline_without_console_errors_and_every_figure_renders(open_page, live_server):
    page = open_page("/")
    page.wait_for_function("() => document.querySelectorAll('#fig-hero .char.selected').length === 3")
    # Bring every figure into view once, so every lazy one starts (a fast scroll can skip past one).
    for figure in page.locator("[data-figure]").all():
        figure.scroll_into_view_if_needed()
    show_connectivity_figure(page)
    page.wait_for_function("() => document.querySelectorAll('#fig-autocomplete .suggestion').length >= 3")
    # The demo opens on the prefix chosen from the shipped models' output (app/demo_prefix.py (python -m app.demo_prefix)).
    assert page.locator("#fig-autocomplete input[type=text]").input_value() == json.loads((ROOT / "static" / "data" / "demo.json").read_text())["prefix"]

    characters = len(EXAMPLE_TEXT)
    assert page.locator("#fig-hero .char").count() == 3 * characters
    assert page.locator("#fig-hero .suggestion").count() >= 3
    assert page.locator("#fig-connectivity .char").count() == 3 * characters
    # The server's step diagrams, as images that cannot run anything.
    assert page.locator("#fig-units .unit-diagram img[src^='data:image/svg+xml,']").count() == 3
    assert page.locator("#fig-units math").count() >= 12
    assert page.locator("#fig-accuracy path.series").count() == 9
    # Two points drawn, one segment: the third has fewer than 100 test words behind it.
    assert page.locator("#fig-accuracy path[data-series=gru-top1]").get_attribute("d").count("L") == 1
    # Against characters seen: each unit's training and validation loss, and its paper counterpart's validation loss.
    assert page.locator("#fig-training .loss-chart path.series").count() == 9
    assert page.locator("#fig-training .loss-chart path.series.paper").count() == 3
    # The snapshots: each unit's two (dots), and the paper's model after two epochs as one hollow diamond at about 180 M characters.
    assert page.locator("#fig-training .history-chart path.series.history").count() == 3
    assert page.locator("#fig-training .history-chart .series-marker.paper-final path").count() == 3
    assert page.locator("#fig-training .history-chart circle").count() == 3 * 2
    # The x-axis runs to the paper's two epochs: 14,278 mini-batches of about 12,600 characters.
    assert "180M" in page.locator("#fig-training .history-chart .x-axis").text_content()
    page.locator("#fig-training input[name=history-measure][value=example_reach_10]").check()
    assert "reach-10 (example sentence)" in page.locator("#fig-training .history-chart .axis-title").all_text_contents()
    assert page.locator("#fig-tables tbody tr").count() == 12
    assert page.locator("[data-figure=setup] tbody tr").count() == 6
    gru = next(model for model in httpx.get(live_server + "/api/models", timeout=60).json() if model["id"] == "gru")
    words = gru["vocabulary_size"]
    summary = page.locator("[data-figure=model-summary]").inner_text()
    assert f"{words:,} words" in summary
    # The tiny checkpoints' metrics.json names no training machine: older records were trained on a CPU.
    assert "Characters read during training on a CPU: GRU" in summary
    assert all(note.strip() for note in page.locator("[data-walkthrough-note]").all_inner_texts())

    page.locator("#fig-accuracy input[name=paper-overlay]").check()
    assert page.locator("#fig-accuracy path.series.paper").count() == 9
    page.locator("#fig-training input[value=step]").check()
    assert page.locator("#fig-training .loss-chart path.series").count() == 9
    # The paper logged no wall-clock time that lines up with ours: no paper curve on that axis.
    page.locator("#fig-training input[value=seconds]").check()
    assert page.locator("#fig-training .loss-chart path.series").count() == 6

    page.evaluate("window.scrollTo(0, 0)")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert page.console_errors == []


LEGS_RECORD = {
    "corpus": {"name": "wiki100m"}, "characters_seen": 180_000_000, "training_seconds": 24_434, "trained_on": "CPU", "steps": 14_280,
    "preset": "bundled", "test": {"cross_entropy": 2.3, "accuracy": 0.55},
    "training_curve": [
        {"step": 7600, "seconds": 432.7, "characters": 95_782_599, "train_loss": 2.43, "valid_loss": 2.47},
        {"step": 14_280, "seconds": 24_434, "characters": 180_000_000, "train_loss": 2.2, "valid_loss": 2.3},
    ],
    "legs": [
        {"device": "NVIDIA H100 80GB HBM3", "sampled_words": 0, "characters": 96_400_000, "seconds": 434},
        {"device": "CPU", "sampled_words": 2048, "characters": 83_600_000, "seconds": 24_000},
    ],
}


def test_a_model_trained_in_legs_names_each_machine_and_loss(open_page):
    """A model continued on another machine, or with another loss, says where each stretch of its training ran."""
    page = open_page("/")
    texts = page.evaluate(
        """async (record) => {
          const units = [{ id: "gru", name: "GRU", paperName: null, model: { hidden_size: 256, num_layers: 2, depth: 1, vocabulary_size: 16386 } }];
          const data = { units, metrics: { models: { gru: record } }, paper: { models: { GRU: { units: 600 } }, training: { epochs: 2, minibatches: 14271 } } };
          const rendered = {};
          for (const figure of ["model-summary", "setup"]) {
            const { render } = await import(`/static/figures/${figure}.js`);
            const element = document.createElement("div");
            render(element, data);
            rendered[figure] = element.textContent;
          }
          const training = document.body.appendChild(document.createElement("div"));
          training.appendChild(document.createElement("div")).className = "figure-body";
          await (await import("/static/figures/training.js")).render(training, { ...data, units: units.map((unit) => ({ ...unit, colour: "#123456" })) });
          const note = () => training.querySelector(".chart-note").textContent;
          rendered.charactersAxis = note();
          training.querySelector("input[value=seconds]").click();
          rendered.secondsAxis = note();
          return rendered;
        }""",
        LEGS_RECORD,
    )
    texts = {figure: text.replace("\xa0", " ") for figure, text in texts.items()}
    legs = "96.4 million in 7 min on one NVIDIA H100 80GB HBM3, then 83.6 million in 6 h 40 min on a CPU with a sampled softmax"
    assert f"Characters read during training: GRU 180 million ({legs})." in texts["model-summary"]
    assert legs in texts["setup"]
    # Figure 7's wall-clock axis adds the machines' times up, and says so; its other axes need no such note.
    assert texts["charactersAxis"] == ""
    assert texts["secondsAxis"] == f"Training moved between machines, whose times add up here. GRU: {legs}."


def test_typing_updates_every_units_suggestions_to_match_the_api(open_page, live_server):
    page = open_page("/")
    page.locator("#fig-autocomplete").scroll_into_view_if_needed()
    box = page.locator("#fig-autocomplete input[type=text]")
    page.wait_for_function("() => document.querySelectorAll('#fig-autocomplete .suggestion').length >= 3")
    requests = []
    page.on("request", lambda request: request.url.endswith("/api/autocomplete") and requests.append(request.post_data_json))
    box.fill("the history of")
    box.press("End")
    box.press_sequentially(" am", delay=30)

    expected = api(live_server, "/api/autocomplete", {"text": "the history of am", "positions": "last"})
    page.wait_for_function(
        "text => document.querySelector('#fig-autocomplete .model-sees code')?.textContent === text", arg=expected["text"]
    )
    page.wait_for_timeout(200)
    # One incremental request per keystroke, each asking only for the last position.
    assert len(requests) >= 3 and all(body["positions"] == "last" for body in requests)
    for unit in UNIT_IDS:
        shown = page.eval_on_selector_all(
            f"#fig-autocomplete [data-unit={unit}] .suggestion",
            "buttons => buttons.map(b => [b.querySelector('.word').textContent, b.querySelector('.probability').textContent])",
        )
        suggestions = expected["models"][unit][-1]["suggestions"]
        assert [word for word, _ in shown] == [item["word"] for item in suggestions]
        for (_, percent), item in zip(shown, suggestions):
            assert math.isclose(float(percent.rstrip(" %")), item["probability"] * 100, abs_tol=0.51)

    page.get_by_role("button", name="remove the last letters").click()
    page.wait_for_function("() => document.querySelector('#fig-autocomplete .model-sees code')?.textContent === ' the history of '")
    assert page.console_errors == []


def relative_luminance(css_colour):
    red, green, blue = (int(part) / 255 for part in re.findall(r"\d+", css_colour)[:3])
    linear = [value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4 for value in (red, green, blue)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_hover_selects_in_all_panels_and_colours_follow_the_api(open_page, live_server):
    page = open_page("/")
    show_connectivity_figure(page)
    position = 60
    page.locator(f"#fig-connectivity [data-unit=lstm] .char[data-position='{position}']").hover()
    assert selected_positions(page, "#fig-connectivity") == [position] * 3

    for unit in UNIT_IDS:
        row = api(live_server, "/api/connectivity", {"text": EXAMPLE_TEXT, "model": unit, "positions": [position]})["rows"][0]
        values = row["connectivity"][: position + 1]
        peak = max(values)
        colours = page.eval_on_selector_all(
            f"#fig-connectivity [data-unit={unit}] .char",
            f"chars => chars.slice(0, {position + 1}).map(c => getComputedStyle(c).backgroundColor)",
        )
        luminance = [relative_luminance(colour) for colour in colours]
        # Viridis brightens monotonically over the band used, so brighter must mean more connected.
        for i in range(len(values)):
            for j in range(len(values)):
                if values[i] / peak > values[j] / peak + 0.05:
                    assert luminance[i] > luminance[j], (unit, i, j)
        assert page.locator(f"#fig-connectivity [data-unit={unit}] .row-word").inner_text() == row["word"]

    page.locator("#fig-connectivity [data-unit=gru] .char-line").focus()
    page.keyboard.press("ArrowRight")
    assert selected_positions(page, "#fig-connectivity") == [position + 1] * 3
    assert page.console_errors == []


def test_walkthrough_links_select_their_positions(open_page):
    page = open_page("/")
    show_connectivity_figure(page)
    links = {"1": WALKTHROUGH["1"], "2": WALKTHROUGH["2"], "3": WALKTHROUGH["3"]}
    # The links inside note 2 point at a word while Figure 4 stays on the note's position (tests/test_article_round2.py).
    links.update({f"inline-{index}": WALKTHROUGH["2"] for index in range(len(WALKTHROUGH["inline"]))})
    for key, position in links.items():
        page.locator(f"[data-walkthrough='{key}']").click()
        wait_for_all_three(page, "#fig-connectivity .char.selected", "(c, p) => Number(c.dataset.position) === p", position)
        assert f"position={position}" in page.url
    assert page.console_errors == []


def test_clicking_a_suggestion_changes_the_word_and_a_permalink_reopens_the_view(open_page, live_server):
    position = WALKTHROUGH["3"]
    page = open_page(f"/?position={position}&method=gradient_x_input")
    show_connectivity_figure(page)
    assert page.locator("#fig-connectivity select[name=method]").input_value() == "gradient_x_input"
    assert selected_positions(page, "#fig-connectivity") == [position] * 3

    second = page.locator("#fig-connectivity [data-unit=nlstm] .suggestion").nth(1)
    word = second.locator(".word").inner_text()
    second.click()
    wait_for_all_three(page, "#fig-connectivity .row-word", "(e, w) => e.textContent === w", word)
    expected = api(live_server, "/api/connectivity", {
        "text": EXAMPLE_TEXT, "model": "gru", "positions": [position], "word": word, "method": "gradient_x_input",
    })["rows"][0]
    assert expected["word"] == word
    page.wait_for_function("w => new URL(location.href).searchParams.get('word') === w", arg=word)
    permalink = page.url
    with page.expect_download() as download:
        page.locator("#fig-connectivity [data-download=json]").click()
    saved = json.loads(Path(download.value.path()).read_text())
    assert saved["position"] == position and saved["word"] == word and saved["method"] == "gradient_x_input"
    # The API sends a row up to its position; the page pads it with the 0s of the later characters.
    padded = expected["connectivity"] + [0.0] * (len(EXAMPLE_TEXT) - position - 1)
    assert saved["models"]["gru"]["connectivity"] == pytest.approx(padded, rel=1e-6)

    reopened = open_page(urlsplit(permalink).path + "?" + urlsplit(permalink).query)
    show_connectivity_figure(reopened)
    wait_for_all_three(reopened, "#fig-connectivity .row-word", "(e, w) => e.textContent === w", word)
    assert selected_positions(reopened, "#fig-connectivity") == [position] * 3
    assert reopened.locator("#fig-connectivity select[name=method]").input_value() == "gradient_x_input"
    assert page.console_errors == [] and reopened.console_errors == []


def test_phone_width_with_reduced_motion_own_sentence_recomputes(open_page, live_server):
    sentence = "Grammar is taught in 2 schools."
    normalised = api(live_server, "/api/autocomplete", {"text": sentence, "positions": "last"})["text"]
    page = open_page("/", viewport=(375, 740), reduced_motion="reduce")
    page.wait_for_function("() => document.querySelectorAll('#fig-hero .char.selected').length === 3")
    start = EXAMPLE_TEXT.index("formal study of grammar") - 1
    page.wait_for_timeout(1500)
    assert selected_positions(page, "#fig-hero") == [start] * 3, "no autoplay when the reader prefers reduced motion"
    show_connectivity_figure(page)
    page.locator("#fig-connectivity textarea").fill(sentence)
    page.get_by_role("button", name="Compute").click()
    page.wait_for_function("n => document.querySelectorAll('#fig-connectivity [data-unit=gru] .char').length === n", arg=len(normalised))
    # Every character is there; on a phone only a window of them is displayed.
    assert page.locator("#fig-connectivity [data-unit=gru] .char-line").text_content() == normalised
    assert selected_positions(page, "#fig-connectivity") == [len(normalised) - 1] * 3
    page.wait_for_function("() => new URL(location.href).searchParams.get('text') !== null")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.console_errors == []


PAPER_MEMORY = json.loads((ROOT / "static" / "data" / "paper" / "memory.json").read_text())
PAPER_ROWS = {unit: json.loads((ROOT / "static" / "data" / "paper" / f"{unit}.json").read_text()) for unit in UNIT_IDS}


def percent(share):
    """The figures' percentage format (static/format.js, the same as app/formatting.py's)."""
    return formatting.percent(share)


def bucket_width(index):
    bucket = PAPER_MEMORY["buckets"][index]
    return bucket["high"] - bucket["low"] + 1


def test_memory_figure_shows_each_units_profile_the_papers_overlay_and_reach_in_words(open_page, live_server):
    models = {model["id"]: model for model in httpx.get(live_server + "/api/models", timeout=60).json()}
    page = open_page("/")
    page.locator("#fig-memory").scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelectorAll('#fig-memory path.series').length === 3")
    # One point per distance bucket and unit.
    assert page.locator("#fig-memory .lines + g circle").count() == 3 * 9

    for unit in UNIT_IDS:
        memory = models[unit]["memory"]
        words = page.locator(f"#fig-memory .memory-reach li[data-unit={unit}]").inner_text()
        ours = f"{percent(memory['test']['before_word'])} of its connectivity lies before the current word and {percent(memory['test']['reach_10'])} more than 10 characters back on our test sample"
        theirs = PAPER_MEMORY["units"][unit]
        assert ours in words
        assert f"the paper's {models[unit]['name']} {percent(theirs['before_word'])} and {percent(theirs['reach_10'])}" in words

    # Keyboard and hover read out the shares of one bucket for every unit: per character of distance, and in all.
    page.locator("#fig-memory .chart-frame").focus()
    page.keyboard.press("ArrowRight")
    readout = page.locator("#fig-memory .chart .status").inner_text()
    assert readout.startswith("characters back (log scale) 0:")
    for unit in UNIT_IDS:
        share = models[unit]["memory"]["test"]["by_distance"][0]
        assert f"{models[unit]['name']} {percent(share)} per character, {percent(share)} in all" in readout
    box = page.locator("#fig-memory .chart-frame > svg").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] / 2)
    tooltip = page.locator("#fig-memory .tooltip")
    assert tooltip.is_visible()
    label = tooltip.locator("strong").inner_text().split(": ")[1]
    bucket = [item["label"] for item in PAPER_MEMORY["buckets"]].index(label)
    assert bucket > 0
    cells = tooltip.locator("td").all_inner_texts()
    share = models["gru"]["memory"]["test"]["by_distance"][bucket]
    assert f"{percent(share / bucket_width(bucket))} per character, {percent(share)} in all" in cells

    # The paper's profile stands beside ours on the same sentence only.
    page.locator("#fig-memory input[name=memory-view][value=example]").check()
    assert page.locator("#fig-memory path.series.paper").count() == 3
    page.locator("#fig-memory .chart-frame").focus()
    page.keyboard.press("End")
    readout = page.locator("#fig-memory .chart .status").inner_text()
    share = PAPER_MEMORY["units"]["nlstm"]["by_distance"][-1]
    assert f"paper, example sentence: Nested LSTM {percent(share / bucket_width(-1))} per character, {percent(share)} in all" in readout
    assert page.console_errors == []


def share_before_word(row, position):
    """The share of `row` (connectivity over EXAMPLE_TEXT) at `position` before the current word, by models/memory.py."""
    padded = np.zeros(len(EXAMPLE_TEXT))
    padded[: position + 1] = row[: position + 1]
    starts = word_starts(np.array([CHAR_IDS[char] for char in EXAMPLE_TEXT]))
    return float(row_shares(padded[None], np.array([position]), starts[[position]])["before_word"][0])


def note_percent(share):
    """The walkthrough notes' format (formatProbability in text-panels.js)."""
    return f"{share * 100:.{1 if share < 0.1 else 0}f} %"


def test_walkthrough_notes_give_each_units_share_before_the_word_beside_the_papers(open_page, live_server):
    page = open_page("/")
    show_connectivity_figure(page)
    page.wait_for_function("() => [...document.querySelectorAll('[data-walkthrough-note]')].every((note) => note.textContent)")
    models = {model["id"]: model["name"] for model in httpx.get(live_server + "/api/models", timeout=60).json()}
    suggestions = api(live_server, "/api/autocomplete", {"text": EXAMPLE_TEXT, "models": UNIT_IDS, "positions": "all"})["models"]
    for step in ("1", "2", "3"):
        position = WALKTHROUGH[step]
        note = page.locator(f"[data-walkthrough-note='{step}']").inner_text()
        for unit in UNIT_IDS:
            paper = PAPER_ROWS[unit]["positions"][position]
            theirs = note_percent(share_before_word(paper["connectivity"], position))
            # Like with like: our rows, as the paper's, for the word in the text, where the model knows it (it suggests it).
            if paper["target"] in {entry["word"] for at in suggestions[unit] for entry in at["suggestions"]}:
                body = {"text": EXAMPLE_TEXT, "model": unit, "positions": [position], "word": paper["target"]}
                ours = api(live_server, "/api/connectivity", body)["rows"][0]["connectivity"]
                expected = f"{note_percent(share_before_word(ours, position))} of its row lies before the current word (the paper's {models[unit]}: {theirs})"
            else:  # the tiny models' vocabulary lacks the word: the row for their own guess, and the note says so
                guess = suggestions[unit][position]["suggestions"][0]["word"]
                ours = api(live_server, "/api/connectivity", {"text": EXAMPLE_TEXT, "model": unit, "positions": [position]})["rows"][0]["connectivity"]
                expected = (
                    f"{note_percent(share_before_word(ours, position))} of its row for “{guess}” (it never suggests “{paper['target']}”, "
                    f"so it may not know the word) lies before the current word (the paper's {models[unit]}, for “{paper['target']}”: {theirs})"
                )
            assert expected in note
    # The figure: at the second "grammar" the paper's GRU row lies almost all before the word.
    assert "for “grammar”, the word in the text" in page.locator("[data-walkthrough-note='2']").inner_text()
    assert "(the paper's GRU" in page.locator("[data-walkthrough-note='2']").inner_text()
    assert ": 96 %)" in page.locator("[data-walkthrough-note='2']").inner_text()
    # The notes read the paper's shares from its memory profile; its rows load only when the reader asks for them.
    fetched = page.evaluate("performance.getEntriesByType('resource').map((entry) => new URL(entry.name).pathname)")
    assert "/static/data/paper/memory.json" in fetched
    assert not [path for path in fetched if path in {f"/static/data/paper/{unit}.json" for unit in UNIT_IDS}]
    assert page.console_errors == []


def panel_names(page):
    return page.eval_on_selector_all("#fig-connectivity .panel-title", "headings => headings.map(h => h.textContent)")


def test_switch_shows_the_papers_published_connectivity_and_editing_the_text_switches_back(open_page, live_server):
    page = open_page("/")
    show_connectivity_figure(page)
    paper_requests = []
    page.on("request", lambda request: "/static/data/paper/" in request.url and paper_requests.append(request.url))
    assert panel_names(page) == ["GRU", "LSTM", "Nested LSTM"]
    page.get_by_label("the paper's published models").check()
    wait_for_all_three(page, "#fig-connectivity .panel-title", "(h) => h.textContent.endsWith(\"the paper's model\")", None)
    labels = page.locator("#fig-connectivity .published-label").all_inner_texts()
    assert labels == [PAPER_ROWS["gru"]["models"]] * 3 and "600 units, text8, two epochs" in labels[0]
    assert page.locator("#fig-connectivity select[name=method]").is_disabled()
    page.wait_for_function("() => new URL(location.href).searchParams.get('source') === 'paper'")

    def assert_paper_rows(position):
        assert selected_positions(page, "#fig-connectivity") == [position] * 3
        for unit in UNIT_IDS:
            published = PAPER_ROWS[unit]["positions"][position]
            shown = page.eval_on_selector_all(
                f"#fig-connectivity [data-unit={unit}] .char", f"chars => chars.slice(0, {position + 1}).map(c => Number(c.dataset.connectivity))"
            )
            peak = max(published["connectivity"])
            assert shown == pytest.approx([value / peak for value in published["connectivity"]], abs=6e-5)
            guesses = page.eval_on_selector_all(
                f"#fig-connectivity [data-unit={unit}] .suggestion", "buttons => buttons.map(b => [b.querySelector('.word').textContent, b.disabled])"
            )
            assert guesses == [[word, True] for word in published["predict"]]
            assert page.locator(f"#fig-connectivity [data-unit={unit}] .row-word").inner_text() == published["target"]

    assert_paper_rows(WALKTHROUGH["1"])
    page.locator("#fig-connectivity [data-unit=nlstm] .char[data-position='40']").hover()
    assert_paper_rows(40)
    page.locator("#fig-connectivity [data-unit=gru] .char-line").focus()
    page.keyboard.press("ArrowRight")
    assert_paper_rows(41)
    page.locator("[data-walkthrough='2']").click()
    wait_for_all_three(page, "#fig-connectivity .char.selected", "(c, p) => Number(c.dataset.position) === p", WALKTHROUGH["2"])
    assert_paper_rows(WALKTHROUGH["2"])
    # Each published file is fetched at most once (the walkthrough notes may have fetched it already).
    assert len(paper_requests) == len(set(paper_requests)) and {url.rsplit("/", 1)[1] for url in paper_requests} <= {"gru.json", "lstm.json", "nlstm.json"}

    page.locator("#fig-connectivity textarea").press("End")
    page.locator("#fig-connectivity textarea").press_sequentially(" x")
    wait_for_all_three(page, "#fig-connectivity .panel-title", "(h, names) => names.includes(h.textContent)", ["GRU", "LSTM", "Nested LSTM"])
    assert page.locator("#fig-connectivity input[value=ours]").is_checked()
    assert page.locator("#fig-connectivity .published-label:visible").count() == 0
    show_connectivity_figure(page)
    ours = api(live_server, "/api/connectivity", {"text": EXAMPLE_TEXT, "model": "gru", "positions": [WALKTHROUGH["2"]]})["rows"][0]
    wait_for_all_three(page, "#fig-connectivity .char.selected", "(c, p) => Number(c.dataset.position) === p", WALKTHROUGH["2"])
    page.wait_for_function("w => document.querySelector('#fig-connectivity [data-unit=gru] .row-word')?.textContent === w", arg=ours["word"])
    page.wait_for_function("() => new URL(location.href).searchParams.get('source') === null")
    assert page.console_errors == []


def render_every_figure(page):
    """Scrolls to every figure so every lazy one starts, and waits until every figure has drawn."""
    for figure in page.locator("[data-figure]").all():
        figure.scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll('[data-figure]')].every((figure) => figure.dataset.rendered === 'true')")
    show_connectivity_figure(page)
    page.wait_for_function("() => [...document.querySelectorAll('[data-walkthrough-note]')].every((note) => note.textContent)")


@pytest.mark.parametrize("viewport", [(1280, 900), (375, 740)], ids=["1280px", "375px"])
def test_axe_finds_no_serious_or_critical_violation(open_page, viewport):
    # axe is injected as a script, which the page's own Content-Security-Policy would refuse.
    page = open_page("/", viewport=viewport, bypass_csp=True)
    render_every_figure(page)
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        """async () => (await axe.run(document, { resultTypes: ["violations"] })).violations
              .map((violation) => ({ id: violation.id, impact: violation.impact, nodes: violation.nodes.map((node) => node.target.join(" ")) }))"""
    )
    assert [violation for violation in violations if violation["impact"] in ("serious", "critical")] == []
    # The two moderate findings of issue 13 (the hero before any h2, outside every landmark) stay fixed too.
    assert [violation["id"] for violation in violations if violation["id"] in ("heading-order", "region")] == []
    assert page.console_errors == []


def test_a_suggestion_clicked_in_figure_3_opens_figure_4_on_the_text_shown_now(open_page, live_server):
    """A button kept for the same word across keystrokes must open the text of the latest keystroke."""
    start = "the history of"
    later = None
    for extension in (" t", " a", " c", " w", " s", " p", " o"):
        before = api(live_server, "/api/autocomplete", {"text": start, "models": ["gru"], "positions": "last"})
        after = api(live_server, "/api/autocomplete", {"text": start + extension, "models": ["gru"], "positions": "last"})
        shared = {item["word"] for item in before["models"]["gru"][-1]["suggestions"]} & {item["word"] for item in after["models"]["gru"][-1]["suggestions"]}
        if shared:
            later, word = after["text"], sorted(shared)[0]
            break
    assert later is not None, "no guess of the GRU survives a keystroke: pick other texts"
    page = open_page("/")
    page.locator("#fig-autocomplete").scroll_into_view_if_needed()
    box = page.locator("#fig-autocomplete input[type=text]")
    box.fill(start)
    page.wait_for_function("t => document.querySelector('#fig-autocomplete .model-sees code')?.textContent === t", arg=before["text"])
    box.press("End")
    box.press_sequentially(later[len(before["text"]):])
    page.wait_for_function("t => document.querySelector('#fig-autocomplete .model-sees code')?.textContent === t", arg=later)
    page.locator("#fig-autocomplete [data-unit=gru] .suggestion", has_text=word).click()
    page.wait_for_function("t => new URL(location.href).searchParams.get('text') === t", arg=later)
    show_connectivity_figure(page)
    wait_for_all_three(page, "#fig-connectivity .char.selected", "(c, p) => Number(c.dataset.position) === p", len(later) - 1)
    wait_for_all_three(page, "#fig-connectivity .row-word", "(e, w) => e.textContent === w", word)
    assert page.console_errors == []


# Every visible text in the figures with its colour and the colour behind it, both from computed styles:
# an SVG text's colour is its fill; the background is the shape it is drawn on, or else the nearest
# ancestor's with any opacity, blended over the ones behind it; opacity of the text's ancestors fades
# the text towards that background.
TEXT_COLOURS_JS = """(selector) => {
  const parse = (css) => { const [r, g, b, a = 1] = css.match(/[\\d.]+/g).map(Number); return { r, g, b, a }; };
  const over = (top, bottom) => ({ r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a), b: top.b * top.a + bottom.b * (1 - top.a), a: 1 });
  const background = (element) => {
    const layers = [];
    for (let node = element; node; node = node.parentElement) {
      const colour = parse(getComputedStyle(node).backgroundColor);
      if (colour.a > 0) layers.push(colour);
      if (colour.a === 1) break;
    }
    return layers.reverse().reduce((below, layer) => over(layer, below), { r: 255, g: 255, b: 255, a: 1 });
  };
  // An SVG text drawn on a shape (a diagram's box) reads against that shape's fill.
  const shapeBehind = (text) => {
    const svg = text.ownerSVGElement;
    if (!svg) return null;
    const box = text.getBoundingClientRect();
    const [x, y] = [box.x + box.width / 2, box.y + box.height / 2];
    let found = null;
    for (const shape of svg.querySelectorAll('rect, circle, ellipse')) {
      if (shape.compareDocumentPosition(text) & Node.DOCUMENT_POSITION_PRECEDING) continue;
      const fill = getComputedStyle(shape).fill;
      const area = shape.getBoundingClientRect();
      if (fill === 'none' || fill.startsWith('url') || x < area.left || x > area.right || y < area.top || y > area.bottom) continue;
      found = parse(fill);
    }
    return found;
  };
  const results = [];
  for (const figure of document.querySelectorAll(selector)) {
    for (const element of figure.querySelectorAll('*')) {
      const text = [...element.childNodes].filter((node) => node.nodeType === 3).map((node) => node.textContent).join('').trim();
      if (!text || element.closest('[hidden], [aria-hidden=true], .visually-hidden, :disabled, math')) continue;
      const box = element.getBoundingClientRect();
      if (box.width === 0 || box.height === 0 || getComputedStyle(element).visibility === 'hidden') continue;
      const style = getComputedStyle(element);
      let opacity = 1;
      for (let node = element; node; node = node.parentElement) opacity *= Number(getComputedStyle(node).opacity);
      const behind = (element instanceof SVGElement && shapeBehind(element)) || background(element);
      const ink = parse(element instanceof SVGElement ? style.fill : style.color);
      results.push({ text: text.slice(0, 30), where: element.className.baseVal ?? element.className, ink: over({ ...ink, a: ink.a * opacity }, behind), behind });
    }
  }
  return results;
}"""


def contrast(first, second):
    def luminance(colour):
        channels = [colour[key] / 255 for key in "rgb"]
        linear = [value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4 for value in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted([luminance(first), luminance(second)], reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


FIGURES = "figure, [data-figure]"


@pytest.mark.parametrize("colour_scheme", ["light", "dark"])
def test_every_text_in_the_figures_has_a_contrast_of_at_least_4_5(open_page, colour_scheme):
    page = open_page("/", color_scheme=colour_scheme)
    render_every_figure(page)
    # Hover a position late in the sentence: most characters coloured, some after it.
    page.locator("#fig-connectivity [data-unit=gru] .char[data-position='150']").hover()
    page.locator("#fig-accuracy input[name=paper-overlay]").check()
    texts = page.evaluate(TEXT_COLOURS_JS, FIGURES)
    assert len(texts) > 3 * len(EXAMPLE_TEXT)
    low = [(item["text"], item["where"], round(contrast(item["ink"], item["behind"]), 2)) for item in texts if contrast(item["ink"], item["behind"]) < 4.5]
    assert low == []


def test_forced_colours_keep_the_shading_bars_and_swatches_and_the_slider_speaks_the_strongest_characters(open_page, live_server):
    models = {model["id"]: model["name"] for model in httpx.get(live_server + "/api/models", timeout=60).json()}
    page = open_page("/", forced_colors="active")
    show_connectivity_figure(page)
    position = WALKTHROUGH["1"]
    for unit in UNIT_IDS:
        styles = page.eval_on_selector_all(
            f"#fig-connectivity [data-unit={unit}] .char", "chars => chars.map(c => [c.style.backgroundColor, getComputedStyle(c).backgroundColor])"
        )
        coloured = styles[: position + 1]
        assert all(inline and inline == computed for inline, computed in coloured), "forced colours repainted the shading"
        bars = page.eval_on_selector_all(f"#fig-connectivity [data-unit={unit}] .bar", "bars => bars.map(b => getComputedStyle(b).backgroundColor)")
        assert bars and all(bar == bars[0] and bar not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)") for bar in bars)
        swatch = page.eval_on_selector(f"#fig-connectivity .text-panel[data-unit={unit}] .unit-swatch", "s => getComputedStyle(s).backgroundColor")
        assert swatch == bars[0]

        row = api(live_server, "/api/connectivity", {"text": EXAMPLE_TEXT, "model": unit, "positions": [position]})["rows"][0]["connectivity"]
        ranked = sorted(range(position + 1), key=lambda index: (-row[index], -index))[:3]
        expected = [position - index for index in ranked]
        spoken = page.locator(f"#fig-connectivity [data-unit={unit}] .char-line").get_attribute("aria-valuetext")
        assert spoken.startswith(f"position {position}, ")
        # The first panel is the tab stop and speaks for all three; the others for their own unit.
        first = page.locator("#fig-connectivity .char-line").first.get_attribute("aria-valuetext")
        (own,) = [part for part in first.split("; ") if part.startswith(f"{models[unit]} most connected:")]
        assert [int(distance) for distance in re.findall(r"(\d+) back", own)] == expected
        if unit != "gru":
            assert [int(distance) for distance in re.findall(r"(\d+) back", spoken)] == expected
    assert page.console_errors == []


# The sum of every layout shift not caused by the reader, as the layout-shift performance entries report them.
LAYOUT_SHIFT_JS = """
window.layoutShift = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) if (!entry.hadRecentInput) window.layoutShift += entry.value;
}).observe({ type: "layout-shift", buffered: true });
"""


@pytest.mark.parametrize("viewport", [(1280, 900), (375, 740)], ids=["1280px", "375px"])
def test_cumulative_layout_shift_while_the_first_screen_loads_is_under_0_1(open_page, viewport):
    page = open_page("/", viewport=viewport, init_script=LAYOUT_SHIFT_JS)
    page.wait_for_function("() => document.querySelector('#fig-hero').dataset.rendered === 'true'")
    # A few autoplay steps too: the moving selection must not move the layout either.
    page.wait_for_timeout(3000)
    assert page.evaluate("window.layoutShift") < 0.1
    assert page.console_errors == []


def test_a_permalink_lands_on_figure_4_and_focuses_it(open_page):
    page = open_page(f"/?position={WALKTHROUGH['3']}&method=gradient_x_input", viewport=(1280, 900))
    show_connectivity_figure(page)
    page.wait_for_function("() => document.activeElement?.closest('#fig-connectivity') !== null")
    page.wait_for_timeout(1500)
    assert abs(page.evaluate("document.querySelector('#fig-connectivity').getBoundingClientRect().top")) <= 2
    assert page.evaluate("document.activeElement.classList.contains('char-line')")
    assert page.console_errors == []


def test_phone_shows_the_three_panels_on_one_screen_with_targets_of_24_px(open_page):
    page = open_page("/", viewport=(375, 740), reduced_motion="reduce")
    page.wait_for_function("() => document.querySelector('#fig-hero').dataset.rendered === 'true'")
    lines = page.locator("#fig-hero .char-line")
    page.evaluate("document.querySelector('#fig-hero .char-line').scrollIntoView({ block: 'start' })")
    tops = [lines.nth(index).bounding_box()["y"] for index in range(3)]
    bottom = lines.nth(2).bounding_box()["y"] + lines.nth(2).bounding_box()["height"]
    # The three panels' texts and their guesses on one 740 px screen.
    assert bottom - tops[0] < 740 - 100
    assert page.locator("#fig-hero [data-unit=nlstm] .suggestion").last.bounding_box()["y"] - tops[0] < 740
    boxes = page.eval_on_selector_all(
        "#fig-hero [data-unit=gru] .char", "chars => chars.map(c => c.getBoundingClientRect()).filter(r => r.width > 0).map(r => [r.width, r.height])"
    )
    assert 16 <= len(boxes) < len(EXAMPLE_TEXT)
    assert all(width >= 24 and height >= 24 for width, height in boxes)

    # A tap 3 px off a character's centre selects that character, in all three panels.
    target = page.locator("#fig-hero [data-unit=lstm] .char:not(.outside)").nth(5)
    position = int(target.get_attribute("data-position"))
    box = target.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2 + 3, box["y"] + box["height"] / 2 + 3)
    assert selected_positions(page, "#fig-hero") == [position] * 3

    # The window pages through the text a line at a time; the selected position stays (issue 31).
    def window_positions():
        return [int(value) for value in page.eval_on_selector_all("#fig-hero [data-unit=gru] .char:not(.outside)", "cs => cs.map(c => c.dataset.position)")]

    last = max(window_positions())
    page.locator("#fig-hero").get_by_role("button", name="later line").click()
    assert selected_positions(page, "#fig-hero") == [position] * 3 and last + 1 in window_positions()
    first = min(window_positions())
    page.locator("#fig-hero").get_by_role("button", name="earlier line").click()
    assert selected_positions(page, "#fig-hero") == [position] * 3 and first - 1 in window_positions()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.console_errors == []


def test_every_method_is_asked_only_for_what_the_server_serves(open_page, live_server):
    """Integrated gradients over the whole example is beyond the limit: rows are asked for, with no 422 first."""
    page = open_page("/")
    refused = []
    page.on("response", lambda response: "/api/" in response.url and response.status >= 400 and refused.append((response.status, response.url)))
    show_connectivity_figure(page)
    select = page.locator("#fig-connectivity select[name=method]")
    for method in ("integrated_gradients", "gradient_x_input", "gradient", "integrated_gradients"):
        select.select_option(method)
        page.wait_for_function("m => new URL(location.href).searchParams.get('method') === (m === 'gradient' ? null : m)", arg=method)
        show_connectivity_figure(page)
        page.locator("#fig-connectivity [data-unit=gru] .char-line").focus()
        page.keyboard.press("ArrowLeft")
        show_connectivity_figure(page)
    assert "one position at a time" in page.locator("#fig-connectivity .status").first.inner_text()
    assert refused == []
    assert page.console_errors == []


def test_figure_3_takes_the_servers_longest_text_and_an_error_clears_old_guesses(open_page, live_server):
    page = open_page("/")
    page.locator("#fig-autocomplete").scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelectorAll('#fig-autocomplete .suggestion').length === 9")
    box = page.locator("#fig-autocomplete input[type=text]")
    # 1,000 letters typed: the box keeps 999, which the leading space brings to the server's 1,000.
    box.fill("the cat sat " * 83 + "dogs")
    assert len(box.input_value()) == 999
    page.wait_for_function("() => document.querySelector('#fig-autocomplete .model-sees code')?.textContent.length === 1000")
    assert page.locator("#fig-autocomplete .suggestion").count() == 9
    assert page.locator("#fig-autocomplete .status.error").count() == 0
    # Digits are spelled out, so this one normalises to more than 1,000 characters: refused, old guesses gone.
    box.fill("the cat sat " * 80 + "7 " * 15)
    page.wait_for_function("() => document.querySelector('#fig-autocomplete .status.error')?.textContent.includes('limit')")
    assert page.locator("#fig-autocomplete .suggestion").count() == 0
    assert page.locator("#fig-autocomplete .model-sees").inner_text() == ""


def connectivity_question(request) -> dict | None:
    """The body of a connectivity request, whether the page asked it as GET (the usual form) or as POST."""
    url = urlsplit(request.url)
    if url.path != "/api/connectivity":
        return None
    if request.method == "POST":
        return request.post_data_json
    question = dict(parse_qsl(url.query))
    positions = question.get("positions", "all")
    return {**question, "positions": positions if positions == "all" else [int(part) for part in positions.split(",")]}


def test_integrated_gradients_keep_the_last_colours_dimmed_and_fetch_the_neighbouring_rows(open_page):
    page = open_page("/?method=integrated_gradients")
    asked = []
    page.on("request", lambda request: (question := connectivity_question(request)) and asked.append(question))
    show_connectivity_figure(page)
    position = page.evaluate("Number(document.querySelector('#fig-connectivity .char.selected').dataset.position)")
    # A step of ten: no row there yet. The same task checks the panel before any response could come.
    painted = page.evaluate(
        """() => {
              const line = document.querySelector('#fig-connectivity [data-unit=gru] .char-line');
              line.dispatchEvent(new KeyboardEvent('keydown', { key: 'PageUp', bubbles: true }));
              return { stale: line.classList.contains('stale'), coloured: [...line.querySelectorAll('.char')].filter((c) => c.style.backgroundColor).length };
            }"""
    )
    assert painted == {"stale": True, "coloured": position + 1}
    target = position - 10
    show_connectivity_figure(page)
    assert selected_positions(page, "#fig-connectivity") == [target] * 3
    assert page.locator("#fig-connectivity .char-line.stale").count() == 0
    # Both neighbours are asked for, for every unit, without the reader going there.
    wanted = {(unit, target + step) for unit in UNIT_IDS for step in (1, -1)}
    for _ in range(300):
        if wanted <= {(body["model"], body["positions"][0]) for body in asked if body["method"] == "integrated_gradients" and body["positions"] != "all"}:
            break
        page.wait_for_timeout(100)
    else:
        pytest.fail("the neighbouring rows were not fetched")
    page.wait_for_load_state("networkidle")
    fresh = page.evaluate(
        """() => {
              const line = document.querySelector('#fig-connectivity [data-unit=gru] .char-line');
              line.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowRight', bubbles: true }));
              return { stale: line.classList.contains('stale'), selected: line.querySelector('.char.selected').dataset.connectivity !== '' };
            }"""
    )
    assert fresh == {"stale": False, "selected": True}
    assert page.console_errors == []


@pytest.mark.parametrize(("shading", "ticks"), [("sqrt", ["0", "0.01", "0.1", "0.25", "0.5", "1"]), ("log", ["0.001", "0.01", "0.1", "1"])])
def test_shading_control_maps_values_through_its_scale_and_the_legend_shows_real_values(open_page, shading, ticks):
    page = open_page("/")
    show_connectivity_figure(page)
    page.locator("#fig-connectivity select[name=shading]").select_option(shading)
    page.wait_for_function("s => new URL(location.href).searchParams.get('shading') === s", arg=shading)
    assert page.locator("#fig-connectivity .legend-ticks text").all_text_contents() == ticks
    # Each coloured character has the band colour of its value through the chosen scale (floor 10⁻³ for log).
    mismatches = page.evaluate(
        """(shading) => {
              const band = { sqrt: (v) => Math.sqrt(v), log: (v) => (Math.log10(Math.max(v, 1e-3)) + 3) / 3 }[shading];
              const colour = (v) => d3.color(d3.interpolateViridis(0.29 + band(v) * (2 / 3 - 0.29))).formatRgb();
              return [...document.querySelectorAll('#fig-connectivity .char')].filter((c) => c.dataset.connectivity)
                .filter((c) => {
                  const [shown, expected] = [d3.color(getComputedStyle(c).backgroundColor), d3.color(colour(Number(c.dataset.connectivity)))];
                  return Math.abs(shown.r - expected.r) + Math.abs(shown.g - expected.g) + Math.abs(shown.b - expected.b) > 6;
                }).length;
            }""",
        shading,
    )
    assert mismatches == 0
    assert page.console_errors == []


def test_smaller_reader_fixes(open_page, live_server):
    """Issue 13 item 10: skip link, dark theme, nothing scrolls or clips at 1280 px, the sentence box shows all
    of the example, the accuracy axis ends with its lines, keyboard focus follows a chosen guess to Figure 4."""
    page = open_page("/", viewport=(1280, 900))
    page.keyboard.press("Tab")
    assert page.evaluate("[document.activeElement.className, document.activeElement.getAttribute('href')]") == ["skip-link", "#problem"]
    render_every_figure(page)
    overflowing = page.evaluate(
        "() => [...document.querySelectorAll('.table-scroll, math[display=block]')].filter((e) => e.scrollWidth > e.clientWidth || e.scrollHeight > e.clientHeight).map((e) => e.getAttribute('aria-label'))"
    )
    assert overflowing == []
    assert page.evaluate("(() => { const box = document.querySelector('#fig-connectivity textarea'); return box.scrollHeight <= box.clientHeight; })()")
    # The tiny metrics' third point has too few words, so the lines end at 1 letter, and so does the axis.
    assert page.locator("#fig-accuracy .x-axis .tick text").all_text_contents()[-1] == "1"

    box = page.locator("#fig-autocomplete input[type=text]")
    box.fill("the history of")
    page.wait_for_function("() => document.querySelector('#fig-autocomplete .model-sees code')?.textContent === ' the history of'")
    page.locator("#fig-autocomplete [data-unit=lstm] .suggestion").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.activeElement?.closest('#fig-connectivity') !== null")
    assert page.evaluate("document.activeElement.classList.contains('char-line')")
    assert page.console_errors == []

    dark = open_page("/", color_scheme="dark")
    assert dark.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(21, 21, 21)"


def test_svg_download_has_a_legend_the_view_and_lines_broken_between_words(open_page):
    page = open_page(f"/?position={WALKTHROUGH['2']}&shading=log&method=gradient_x_input")
    show_connectivity_figure(page)
    with page.expect_download() as download:
        page.locator("#fig-connectivity [data-download=svg]").click()
    svg = Path(download.value.path()).read_text()
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert texts[0].startswith(f"Connectivity at position {WALKTHROUGH['2']}")
    assert texts[1] == "gradient × input; each unit scaled to its own maximum; logarithmic (from 10⁻³ of the maximum) shading"
    assert texts[2:6] == ["0.001", "0.01", "0.1", "1"]
    # The GRU panel's characters, line by line (grouped by their y), rebuild the sentence with breaks only at spaces.
    panel = svg.split("GRU: ")[1].split("LSTM: ")[0]
    lines = {}
    for y, char in re.findall(r'<text x="[^"]+" y="([^"]+)"[^>]*>([^<]*)</text>', panel):
        lines.setdefault(float(y), []).append(char)
    rebuilt = ["".join(chars) for _, chars in sorted(lines.items())]
    assert "".join(rebuilt) == EXAMPLE_TEXT
    assert all(line.endswith(" ") for line in rebuilt[:-1])
    assert 'shape-rendering="crispEdges"' in svg
    assert page.console_errors == []


def test_one_tab_stop_per_panel_group_and_per_list_of_guesses(open_page):
    page = open_page("/")
    show_connectivity_figure(page)
    figure = "#fig-connectivity"
    assert page.eval_on_selector_all(f"{figure} .char-line", "lines => lines.map(l => l.tabIndex)") == [0, -1, -1]
    for unit in UNIT_IDS:
        assert page.eval_on_selector_all(f"{figure} [data-unit={unit}] .suggestion", "bs => bs.map(b => b.tabIndex)") == [0, -1, -1]
    # Arrow keys move among one list's guesses, and the tab stop moves along.
    page.locator(f"{figure} [data-unit=lstm] .suggestion").first.focus()
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.querySelector('.word').textContent") == page.locator(f"{figure} [data-unit=lstm] .suggestion .word").nth(1).inner_text()
    assert page.eval_on_selector_all(f"{figure} [data-unit=lstm] .suggestion", "bs => bs.map(b => b.tabIndex)") == [-1, 0, -1]
    # The whole page, tabbed through from the top: far fewer stops than the 59 of issue 13.
    render_every_figure(page)
    page.locator(".skip-link").focus()
    stops = [page.evaluate("document.activeElement.outerHTML.slice(0, 80)")]
    for _ in range(80):
        page.keyboard.press("Tab")
        current = page.evaluate("document.activeElement === document.body ? null : document.activeElement.outerHTML.slice(0, 80)")
        if current is None or current in stops[:1]:
            break
        stops.append(current)
    # 45 before issue 28's unit picker (Figures 1, 3 and 4) and unit legends (Figures 5 to 7, Table 1): a toolbar each, one stop.
    assert 20 <= len(stops) <= 45 + 3 + 5
    assert page.console_errors == []


# A fourth unit the JavaScript has never heard of: registered at run time, with no diagram, served beside the three.
TOY_UNIT = Unit(
    name="toy",
    display_name="Toy RNN",
    description="A plain tanh RNN registered by the browser tests, to show that every figure takes the units the server lists.",
    build=lambda hidden_size, num_layers, depth: nn.RNN(hidden_size, hidden_size, num_layers, batch_first=True),
    default_layers=1,
)
FOUR_UNIT_NAMES = ["GRU", "LSTM", "Nested LSTM", "Toy RNN"]
# Longer than the example sentence, shorter than the default 1,000.
FOUR_UNIT_MAX_TEXT_CHARS = 300


@pytest.fixture(scope="module")
def four_unit_server(tiny_checkpoint_dir, tmp_path_factory):
    """A server on the tiny checkpoints plus a toy unit's, with a lower text limit than the default."""
    register_unit(TOY_UNIT)
    try:
        directory = tmp_path_factory.mktemp("four_units")
        for path in tiny_checkpoint_dir.iterdir():
            shutil.copy(path, directory)
        torch.manual_seed(1)
        config = dataclasses.replace(load_checkpoint(tiny_checkpoint_dir / "gru.safetensors").config, unit=TOY_UNIT.name, num_layers=1)
        toy = AutocompleteNet(config)
        save_checkpoint(toy, directory / f"{TOY_UNIT.name}.safetensors")
        # The toy's training record names no model, so its name can only come from the unit, through the server.
        metrics = json.loads((directory / "metrics.json").read_text())
        record = copy.deepcopy(metrics["models"]["gru"])
        del record["name"]
        record["memory"]["test"]["by_distance"].reverse()
        metrics["models"][TOY_UNIT.name] = {**record, "unit": TOY_UNIT.name, "config": config.to_dict(), "parameters": toy.parameter_counts()}
        (directory / "metrics.json").write_text(json.dumps(metrics))
        with serve_app(directory, max_text_chars=FOUR_UNIT_MAX_TEXT_CHARS) as url:
            yield url
    finally:
        unregister_unit(TOY_UNIT.name)


def distinct_colours(colours):
    return len(set(colours)) == len(colours)


def test_every_figure_shows_every_served_unit_in_the_servers_order_and_names(browser, four_unit_server):
    models = httpx.get(four_unit_server + "/api/models", timeout=60).json()
    assert [model["name"] for model in models] == FOUR_UNIT_NAMES
    with page_opener(browser, four_unit_server) as open_path:
        # Figures 1, 3 and 4 show the paper's three unless told otherwise (tests/test_unit_picker.py): here, all four.
        page = open_path("/?units=gru,lstm,nlstm,toy")
        page.wait_for_function("() => document.querySelectorAll('#fig-hero .char.selected').length === 4")
        for figure in page.locator("[data-figure]").all():
            figure.scroll_into_view_if_needed()
        page.wait_for_function("() => document.querySelectorAll('#fig-autocomplete .suggestion').length === 12")
        show_connectivity_figure(page, units=4)
        page.wait_for_function("() => [...document.querySelectorAll('[data-walkthrough-note]')].every((note) => note.textContent)")

        # Figure 2: a tab per unit; the toy, with no diagram of its own, gets the generic one and the server's description.
        assert page.locator("#fig-units [role=tab]").all_inner_texts() == FOUR_UNIT_NAMES
        assert page.locator("#fig-units .unit-diagram img[src^='data:image/svg+xml,']").count() == 3
        page.locator("#fig-units [role=tab]", has_text="Toy RNN").click()
        toy_panel = page.locator("#fig-units [role=tabpanel][data-unit=toy]")
        assert toy_panel.is_visible()
        assert toy_panel.locator("svg.generic-diagram text").first.text_content() == "Toy RNN"
        assert toy_panel.locator(".unit-description").inner_text() == TOY_UNIT.description

        # Figures 1, 3 and 4: a panel per unit, each in its own colour; the same colours in every figure.
        swatches = page.eval_on_selector_all("#fig-autocomplete .text-panel .unit-swatch", "swatches => swatches.map((s) => getComputedStyle(s).backgroundColor)")
        assert len(swatches) == 4 and distinct_colours(swatches)
        for figure in ("#fig-hero", "#fig-autocomplete", "#fig-connectivity"):
            assert page.eval_on_selector_all(f"{figure} .panel-title", "titles => titles.map((t) => t.textContent)") == FOUR_UNIT_NAMES
            assert page.eval_on_selector_all(f"{figure} .text-panel .unit-swatch", "swatches => swatches.map((s) => getComputedStyle(s).backgroundColor)") == swatches
            assert page.eval_on_selector_all(f"{figure} .unit-toggle .unit-swatch", "swatches => swatches.map((s) => getComputedStyle(s).backgroundColor)") == swatches
        assert selected_positions(page, "#fig-connectivity") == [WALKTHROUGH["1"]] * 4
        notes = page.locator("[data-walkthrough-note]").all_inner_texts()
        assert all("Toy RNN guesses" in note and "the paper's Toy RNN" not in note and "the paper's GRU" in note for note in notes)
        bars = page.eval_on_selector_all("#fig-autocomplete .text-panel", "panels => panels.map((p) => getComputedStyle(p.querySelector('.bar')).backgroundColor)")
        assert bars == swatches
        box = page.locator("#fig-autocomplete input[type=text]")
        assert box.get_attribute("maxlength") == str(FOUR_UNIT_MAX_TEXT_CHARS - 1)
        box.fill("the cat sat " * 30)
        assert len(box.input_value()) == FOUR_UNIT_MAX_TEXT_CHARS - 1
        assert page.locator("#fig-connectivity textarea").get_attribute("maxlength") == str(FOUR_UNIT_MAX_TEXT_CHARS - 1)

        # Figures 5, 6 and 7: a series per unit (per criterion, per curve), in the panels' colours, in the same order.
        page.wait_for_function("() => document.querySelectorAll('#fig-memory path.series').length === 4")
        assert page.eval_on_selector_all("#fig-memory path.series", "paths => paths.map((p) => getComputedStyle(p).stroke)") == swatches
        assert page.locator("#fig-memory .chart-legend .unit-toggle").all_inner_texts() == FOUR_UNIT_NAMES
        reach = page.locator("#fig-memory .memory-reach li[data-unit=toy]").inner_text()
        assert reach.startswith("Toy RNN: ") and "the paper's" not in reach
        accuracy = page.eval_on_selector_all("#fig-accuracy path.series", "paths => paths.map((p) => getComputedStyle(p).stroke)")
        assert accuracy == [colour for colour in swatches for _ in range(3)]
        page.locator("#fig-accuracy input[name=paper-overlay]").check()
        # The paper trained three of the four.
        assert page.locator("#fig-accuracy path.series.paper").count() == 9
        training = page.eval_on_selector_all("#fig-training .loss-chart path.series:not(.paper)", "paths => paths.map((p) => getComputedStyle(p).stroke)")
        assert training == [colour for colour in swatches for _ in range(2)]
        # The paper trained three of the four: no paper curve for the toy.
        assert page.locator("#fig-training .loss-chart path.series.paper").count() == 3

        # Tables and the models box: the toy's own rows, no paper row for it.
        toy_rows = page.locator("#fig-tables tbody tr", has_text="Toy RNN")
        assert toy_rows.count() == 2 and page.locator("#fig-tables tbody tr.paper", has_text="Toy RNN").count() == 0
        assert page.locator("[data-figure=setup] tbody tr").count() == 4 + 3
        summary = page.locator("[data-figure=model-summary]").inner_text()
        assert f"a Toy RNN (1 layer, {models[3]['hidden_size']} units wide)" in summary
        assert f"{models[0]['vocabulary_size']:,} words" in summary

        # The paper's published rows fill the panels of its three units; the toy's says it has none.
        page.locator("#fig-connectivity").get_by_label("the paper's published models").check()
        page.wait_for_function("() => document.querySelector('#fig-connectivity [data-unit=gru] .unit-name').textContent === \"GRU, the paper's model\"")
        assert page.eval_on_selector_all("#fig-connectivity .unit-name", "names => names.map((n) => n.textContent)") == [
            "GRU, the paper's model", "LSTM, the paper's model", "Nested LSTM, the paper's model", "Toy RNN, not in the paper",
        ]
        assert page.locator("#fig-connectivity [data-unit=toy] .row-caption").inner_text() == "The paper published no such model."
        assert page.locator("#fig-connectivity [data-unit=toy] .suggestion").count() == 0
        assert page.console_errors == []
