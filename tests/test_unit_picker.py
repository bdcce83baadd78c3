"""Issue 28, item 5, in the browser: a unit picker for more units than fit side by side, at 1280 and 375 px.

A server of six units (the tiny GRU, LSTM and Nested LSTM and three toy plug-ins the JavaScript has never heard of):
Figures 1, 3 and 4 show the paper's three and ask the server about those only; adding a unit shows its panels and
asks about it alone; removing one hides it; ?units= restores a choice and ignores ids the server does not serve; the
picker and the legends of Figures 5 to 7 and Table 1, which hide and show a unit, work from the keyboard alone; axe
finds no serious or critical violation.
"""

import copy
import dataclasses
import json
import shutil
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import torch
from conftest import serve_app
from test_article import AXE, EXAMPLE_TEXT, browser, page_opener
from torch import nn

from models.checkpoint import load_checkpoint, save_checkpoint
from models.net import AutocompleteNet
from models.units import Unit, register_unit, unregister_unit

__all__ = ["browser"]  # a fixture, used by name

VIEWPORTS = [pytest.param((1280, 900), id="1280px"), pytest.param((375, 740), id="375px")]
PAPER_IDS = ["gru", "lstm", "nlstm"]
# Three plug-ins registered at run time, served after the paper's three: six units, as with minGRU, mLSTM and the vanilla RNN.
TOYS = [
    Unit(
        name=f"toy{letter}",
        display_name=f"Toy RNN {letter.upper()}",
        description="A plain tanh RNN registered by the browser tests, to show that the picker offers every unit the server lists.",
        build=lambda hidden_size, num_layers, depth: nn.RNN(hidden_size, hidden_size, num_layers, batch_first=True),
        default_layers=1,
    )
    for letter in "abc"
]
FIGURES = ("#fig-hero", "#fig-autocomplete", "#fig-connectivity")
# The figures that show every served unit, each with a legend that hides and shows a unit.
EVERY_UNIT_FIGURES = ("#fig-memory", "#fig-intervention", "#fig-accuracy", "#fig-training", "#fig-tables")
API_PATHS = ("/api/autocomplete", "/api/connectivity", "/api/counterfactual", "/api/unrolled")


def made_up_copy_test(offset: float) -> dict:
    """A copy test in the evaluation's format (metrics.json's intervention), with made-up gains, for Figure 5b."""
    buckets = [(5, 24, "5–24"), (25, 59, "25–59"), (60, None, "60+")]
    return {
        "method": "first occurrence of a repeated word swapped for another vocabulary word of the same length",
        "buckets": [
            {
                "low": low,
                "high": high,
                "label": label,
                "cases": 600,
                "gain_space": gain,
                "gain_space_ci95": [gain - 0.02, gain + 0.02],
                "gain_first_letter": gain,
                "gain_first_letter_ci95": [gain - 0.02, gain + 0.02],
                "top3_space_with": 0.09,
                "top3_space_without": 0.08,
                "top3_first_letter_with": 0.3,
                "top3_first_letter_without": 0.28,
            }
            for (low, high, label), gain in zip(buckets, (0.3 - offset, 0.2 - offset, 0.1 - offset), strict=True)
        ],
        "example": {
            "word": "grammar",
            "replacement": "biology",
            "position": 159,
            "probability_with": 0.002,
            "probability_without": 0.001,
            "gain": 0.69,
        },
    }


@pytest.fixture(scope="module")
def six_unit_server(tiny_checkpoint_dir, tmp_path_factory):
    """The tiny checkpoints and three toy units' beside them, each toy with a copy of the GRU's training record."""
    for toy in TOYS:
        register_unit(toy)
    try:
        directory = tmp_path_factory.mktemp("six_units")
        for path in tiny_checkpoint_dir.iterdir():
            shutil.copy(path, directory)
        metrics = json.loads((directory / "metrics.json").read_text())
        gru_config = load_checkpoint(tiny_checkpoint_dir / "gru.safetensors").config
        for seed, toy in enumerate(TOYS, start=1):
            torch.manual_seed(seed)
            config = dataclasses.replace(gru_config, unit=toy.name, num_layers=1)
            net = AutocompleteNet(config)
            save_checkpoint(net, directory / f"{toy.name}.safetensors")
            record = copy.deepcopy(metrics["models"]["gru"])
            del record["name"]  # the toy's name can only come from its unit, through the server
            metrics["models"][toy.name] = {**record, "unit": toy.name, "config": config.to_dict(), "parameters": net.parameter_counts()}
        for index, record in enumerate(metrics["models"].values()):
            record["intervention"] = made_up_copy_test(index / 50)
        (directory / "metrics.json").write_text(json.dumps(metrics))
        with serve_app(directory) as url:
            yield url
    finally:
        for toy in TOYS:
            unregister_unit(toy.name)


@pytest.fixture(scope="module")
def served(six_unit_server):
    """/api/models: id -> display name, in the server's order."""
    return {model["id"]: model["name"] for model in httpx.get(six_unit_server + "/api/models", timeout=60).json()}


@pytest.fixture()
def open_six(browser, six_unit_server):
    """Opens a path of the article on the six-unit server; `page.asked` lists the API questions it asks, from the first."""
    with page_opener(browser, six_unit_server) as open_path:

        def open_recording(path="/", viewport=(1280, 900), **options):
            asked = []
            page = open_path(path, viewport=viewport, before_load=lambda page: record_api_requests(page, asked), **options)
            page.asked = asked
            return page

        yield open_recording


def models_named(request) -> set[str]:
    """The model ids an API request names (`models` or `model`, in the query or the JSON body)."""
    query = dict(parse_qsl(urlsplit(request.url).query))
    body = json.loads(request.post_data) if request.method == "POST" and request.post_data else {}
    named = query.get("models", query.get("model"))
    if named is not None:
        return set(named.split(","))
    named = body.get("models", body.get("model"))
    return set(named) if isinstance(named, list) else {named}


def record_api_requests(page, asked):
    """Appends every API question the page asks to `asked`, as (path, model ids named)."""

    def record(request):
        path = urlsplit(request.url).path
        if path in API_PATHS:
            asked.append((path, models_named(request)))

    page.on("request", record)


def pressed(page, figure):
    """The units a figure's picker (or legend) shows pressed, and its button labels, in order."""
    return page.eval_on_selector_all(
        f"{figure} .unit-toggle", "buttons => buttons.map((b) => [b.dataset.unit, b.textContent, b.getAttribute('aria-pressed')])"
    )


def wait_for_panels(page, units):
    """Waits until Figures 1, 3 and 4 show exactly `units`, each panel filled: a coloured selected character, guesses."""
    page.wait_for_function(
        """(units) => {
              const figures = ['#fig-hero', '#fig-autocomplete', '#fig-connectivity'];
              const shown = (figure) => [...document.querySelectorAll(`${figure} .unit-panels > section`)].map((panel) => panel.dataset.unit);
              const filled = (figure, selector) => units.every((unit) => document.querySelector(`${figure} [data-unit=${unit}] ${selector}`));
              return figures.every((figure) => JSON.stringify(shown(figure)) === JSON.stringify(units))
                && ['#fig-hero', '#fig-connectivity'].every((figure) => filled(figure, '.char.selected[data-connectivity]:not([data-connectivity=""])'))
                && figures.every((figure) => filled(figure, '.suggestion'));
            }""",
        arg=units,
    )


def show_picker_figures(page):
    for figure in FIGURES:
        page.locator(figure).scroll_into_view_if_needed()


def render_every_figure(page):
    for figure in page.locator("[data-figure]").all():
        figure.scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll('[data-figure]')].every((figure) => figure.dataset.rendered === 'true')")
    page.wait_for_function("() => [...document.querySelectorAll('[data-walkthrough-note]')].every((note) => note.textContent)")


def units_in_url(page):
    return dict(parse_qsl(urlsplit(page.url).query)).get("units")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_papers_three_by_default_and_only_they_are_asked_about(open_six, served, viewport):
    page = open_six("/", viewport=viewport)
    render_every_figure(page)
    wait_for_panels(page, PAPER_IDS)
    for figure in FIGURES:
        # Every served unit offered under the server's name, the paper's three pressed.
        assert [(unit, name) for unit, name, _ in pressed(page, figure)] == list(served.items())
        assert [unit for unit, _, state in pressed(page, figure) if state == "true"] == PAPER_IDS
        assert page.locator(f"{figure} fieldset.unit-toggles legend").inner_text() == "Units shown"
        assert page.locator(f"{figure} .panel-title").all_inner_texts() == [served[unit] for unit in PAPER_IDS]
    assert page.asked and all(named <= set(PAPER_IDS) for _, named in page.asked), page.asked
    assert units_in_url(page) is None
    # The walkthrough notes speak of the units shown.
    notes = page.locator("[data-walkthrough-note]").all_inner_texts()
    assert all("GRU guesses" in note and "Toy RNN" not in note for note in notes)

    # Figures 5 to 7 and Table 1 show every served unit, each legend with every unit pressed.
    for figure in EVERY_UNIT_FIGURES:
        for legend in page.locator(f"{figure} fieldset.unit-toggles").all():
            assert legend.locator("legend").inner_text() == "Units"
            buttons = legend.locator(".unit-toggle")
            assert buttons.all_inner_texts() == list(served.values())
            assert [button.get_attribute("aria-pressed") for button in buttons.all()] == ["true"] * 6
    assert page.locator("#fig-training fieldset.unit-toggles").count() == 2
    assert page.locator("#fig-memory path.series").count() == 6
    assert page.locator("#fig-accuracy path.series").count() == 6 * 3
    assert page.locator("#fig-training .loss-chart path.series:not(.paper)").count() == 6 * 2
    assert page.locator("#fig-intervention g.unit-row").count() == 6
    assert page.locator("#fig-tables tbody tr").count() == 2 * (6 + 3)
    assert page.console_errors == []


def focused(page):
    """The focused element: its figure's id, its class and its data-unit."""
    return page.evaluate(
        "() => { const e = document.activeElement; return [e.closest('[data-figure]')?.id ?? null, e.className, e.dataset.unit ?? null]; }"
    )


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_adding_a_unit_asks_about_it_alone_and_removing_one_hides_it(open_six, six_unit_server, served, viewport):
    page = open_six("/", viewport=viewport)
    render_every_figure(page)
    wait_for_panels(page, PAPER_IDS)
    page.asked.clear()

    # Added in Figure 4: its panels appear in all three figures, in the server's order, filled with its own answers.
    page.locator("#fig-connectivity .unit-toggle[data-unit=toyb]").click()
    wait_for_panels(page, [*PAPER_IDS, "toyb"])
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-walkthrough-note]')].every((note) => note.textContent.includes('Toy RNN B guesses'))"
    )
    for figure in FIGURES:
        assert [unit for unit, _, state in pressed(page, figure) if state == "true"] == [*PAPER_IDS, "toyb"]
        assert page.locator(f"{figure} .panel-title").all_inner_texts() == [served[unit] for unit in (*PAPER_IDS, "toyb")]
    assert units_in_url(page) == "gru,lstm,nlstm,toyb"
    # The server was asked about the added unit alone: its suggestions, its matrix, its keystroke guesses, its rows for the notes.
    assert all(named == {"toyb"} for _, named in page.asked), page.asked
    assert {path for path, _ in page.asked} >= {"/api/autocomplete", "/api/connectivity"}
    position = int(page.locator("#fig-connectivity [data-unit=toyb] .char.selected").get_attribute("data-position"))
    answer = httpx.post(six_unit_server + "/api/autocomplete", json={"text": EXAMPLE_TEXT, "models": ["toyb"]}, timeout=60).json()
    expected = [item["word"] for item in answer["models"]["toyb"][position]["suggestions"]]
    assert page.locator("#fig-connectivity [data-unit=toyb] .suggestion .word").all_inner_texts() == expected

    # Removed in Figure 1: its panels go from all three figures, and nothing is asked.
    page.asked.clear()
    page.locator("#fig-hero .unit-toggle[data-unit=lstm]").click()
    wait_for_panels(page, ["gru", "nlstm", "toyb"])
    assert units_in_url(page) == "gru,nlstm,toyb"
    assert page.asked == []

    # Back to the paper's three from Figure 3: no parameter; the LSTM's answers were kept, only its keystroke guesses are asked.
    page.locator("#fig-autocomplete .unit-toggle[data-unit=toyb]").click()
    page.locator("#fig-autocomplete .unit-toggle[data-unit=lstm]").click()
    wait_for_panels(page, PAPER_IDS)
    assert units_in_url(page) is None
    assert all(named == {"lstm"} for _, named in page.asked), page.asked
    assert page.console_errors == []


def test_an_edit_on_screen_is_asked_for_an_added_unit_alone(open_six):
    page = open_six("/")
    show_picker_figures(page)
    wait_for_panels(page, PAPER_IDS)
    page.locator("#fig-connectivity summary").click()
    # Spaces: the tiny vocabulary may have no other word of the word's length.
    page.locator("#fig-connectivity input[name^=replace-with][value=spaces]").check()
    page.locator("#fig-connectivity button.replace").click()
    results = "#fig-connectivity .counterfactual-result"
    page.wait_for_function("(selector) => [...document.querySelectorAll(selector)].filter((line) => line.textContent).length === 3", arg=results)
    edited = page.locator("#fig-connectivity [data-unit=gru] .char-line").inner_text()
    assert edited != EXAMPLE_TEXT
    page.asked.clear()

    page.locator("#fig-connectivity .unit-toggle[data-unit=toya]").click()
    page.wait_for_function("(selector) => [...document.querySelectorAll(selector)].filter((line) => line.textContent).length === 4", arg=results)
    assert page.locator("#fig-connectivity [data-unit=toya] .char-line").inner_text() == edited
    assert page.locator(f"{results}").nth(3).inner_text().startswith("First guess before")
    assert ("/api/counterfactual", {"toya"}) in page.asked
    assert all(named == {"toya"} for _, named in page.asked), page.asked

    # Undo brings the sentence back in every panel, the added unit's filled with its own answers for it.
    page.locator("#fig-connectivity button.undo").click()
    wait_for_panels(page, [*PAPER_IDS, "toya"])
    assert page.locator("#fig-connectivity [data-unit=toya] .char-line").inner_text() == EXAMPLE_TEXT
    assert all(named == {"toya"} for _, named in page.asked), page.asked
    assert page.console_errors == []


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_permalink_restores_the_choice_and_ignores_ids_not_served(open_six, viewport):
    page = open_six(f"/?position={len(EXAMPLE_TEXT) - 1}&units=toyc,nosuch,gru", viewport=viewport)
    show_picker_figures(page)
    wait_for_panels(page, ["gru", "toyc"])
    for figure in FIGURES:
        assert [unit for unit, _, state in pressed(page, figure) if state == "true"] == ["gru", "toyc"]
    assert all(named <= {"gru", "toyc"} for _, named in page.asked), page.asked
    # Figure 4's view and the choice share the query string: each change keeps the other.
    page.locator("#fig-autocomplete .unit-toggle[data-unit=nlstm]").click()
    wait_for_panels(page, ["gru", "nlstm", "toyc"])
    page.wait_for_function("() => new URL(location.href).searchParams.get('units') === 'gru,nlstm,toyc'")
    assert "units=gru,nlstm,toyc" in page.url and f"position={len(EXAMPLE_TEXT) - 1}" in page.url

    copied = open_six(urlsplit(page.url).path + "?" + urlsplit(page.url).query, viewport=viewport)
    show_picker_figures(copied)
    wait_for_panels(copied, ["gru", "nlstm", "toyc"])
    # Nothing the server serves: the default.
    default = open_six("/?units=nosuch,,", viewport=viewport)
    show_picker_figures(default)
    wait_for_panels(default, PAPER_IDS)
    assert page.console_errors == copied.console_errors == default.console_errors == []


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_picker_and_a_legend_work_from_the_keyboard_alone(open_six, viewport):
    page = open_six("/", viewport=viewport, reduced_motion="reduce")
    show_picker_figures(page)
    wait_for_panels(page, PAPER_IDS)

    # One tab stop for the picker, on its first unit; the arrow keys move along it and Space or Enter presses.
    page.locator("#fig-hero .reset-link").focus()
    page.keyboard.press("Tab")
    assert focused(page) == ["fig-hero", "unit-toggle", "gru"]
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    assert focused(page) == ["fig-hero", "unit-toggle", "toya"]
    page.keyboard.press("Space")
    wait_for_panels(page, [*PAPER_IDS, "toya"])
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert focused(page) == ["fig-hero", "unit-toggle", "lstm"]
    page.keyboard.press("Enter")
    wait_for_panels(page, ["gru", "nlstm", "toya"])
    assert focused(page) == ["fig-hero", "unit-toggle", "lstm"]
    # Tab leaves the picker at once: for the first panel's position slider (on a phone, the window's pager before it).
    page.keyboard.press("Tab")
    assert focused(page)[:2] == ["fig-hero", "char-line" if viewport[0] > 760 else "link"]
    page.keyboard.press("Shift+Tab")
    assert focused(page) == ["fig-hero", "unit-toggle", "lstm"]

    # The last unit shown stays: its button says so and does nothing.
    for unit in ("gru", "nlstm"):
        while focused(page)[2] != unit:
            page.keyboard.press("ArrowLeft")
        page.keyboard.press("Space")
    wait_for_panels(page, ["toya"])
    while focused(page)[2] != "toya":
        page.keyboard.press("ArrowRight")
    toya = page.locator("#fig-hero .unit-toggle[data-unit=toya]")
    assert toya.get_attribute("aria-disabled") == "true" and toya.get_attribute("aria-pressed") == "true"
    page.keyboard.press("Space")
    page.wait_for_timeout(300)
    wait_for_panels(page, ["toya"])
    assert units_in_url(page) == "toya"

    # Figure 6's legend: one tab stop after the overlay switch; Space hides a unit's three curves and shows them again.
    page.locator("#fig-accuracy").scroll_into_view_if_needed()
    page.locator("#fig-accuracy input[name=paper-overlay]").focus()
    page.keyboard.press("Tab")
    assert focused(page) == ["fig-accuracy", "unit-toggle", "gru"]
    series = "#fig-accuracy path.series"
    assert page.locator(series).count() == 18
    page.keyboard.press("Space")
    assert page.locator("#fig-accuracy .unit-toggle[data-unit=gru]").get_attribute("aria-pressed") == "false"
    assert page.locator(series).count() == 15 and page.locator(f"{series}[data-series^='gru-']").count() == 0
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    assert page.locator(series).count() == 12 and page.locator(f"{series}[data-series^='lstm-']").count() == 0
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Space")
    assert page.locator(series).count() == 15 and page.locator(f"{series}[data-series^='gru-']").count() == 3
    assert page.console_errors == []


def test_every_legend_hides_and_shows_a_units_series(open_six):
    page = open_six("/")
    render_every_figure(page)

    def hide_and_show(figure, unit, counted, before, after, legend=0):
        button = page.locator(f"{figure} fieldset.unit-toggles").nth(legend).locator(f".unit-toggle[data-unit={unit}]")
        assert page.locator(counted).count() == before
        button.click()
        assert page.locator(counted).count() == after
        assert button.get_attribute("aria-pressed") == "false"
        button.click()
        assert page.locator(counted).count() == before

    hide_and_show("#fig-memory", "toyc", "#fig-memory path.series", 6, 5)
    hide_and_show("#fig-intervention", "lstm", "#fig-intervention g.unit-row", 6, 5)
    hide_and_show("#fig-accuracy", "toya", "#fig-accuracy path.series", 18, 15)
    hide_and_show("#fig-training", "gru", "#fig-training .loss-chart path.series", 6 * 2 + 3, 6 * 2 + 3 - 3)
    hide_and_show("#fig-training", "nlstm", "#fig-training .history-chart path.series.history", 6, 5, legend=1)
    hide_and_show("#fig-tables", "gru", "#fig-tables tbody tr:not([hidden])", 18, 14)
    assert page.console_errors == []


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_axe_finds_no_serious_or_critical_violation_with_a_unit_added_and_one_hidden(open_six, viewport):
    # axe is injected as a script, which the page's own Content-Security-Policy would refuse.
    page = open_six("/?units=gru,lstm,nlstm,toya", viewport=viewport, bypass_csp=True)
    render_every_figure(page)
    wait_for_panels(page, [*PAPER_IDS, "toya"])
    page.locator("#fig-accuracy .unit-toggle[data-unit=toyb]").click()
    page.locator("#fig-hero .unit-toggle[data-unit=nlstm]").click()
    wait_for_panels(page, ["gru", "lstm", "toya"])
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        """async () => (await axe.run(document, { resultTypes: ["violations"] })).violations
              .map((violation) => ({ id: violation.id, impact: violation.impact, nodes: violation.nodes.map((node) => node.target.join(" ")) }))"""
    )
    assert [violation for violation in violations if violation["impact"] in ("serious", "critical")] == []
    assert page.console_errors == []


def test_the_papers_view_takes_a_unit_added_and_goes_back_to_ours_without_any_of_the_papers(open_six):
    page = open_six("/?source=paper&units=gru,toyb")
    show_picker_figures(page)
    names = "#fig-connectivity .unit-name"
    page.wait_for_function('(selector) => document.querySelector(selector)?.textContent === "GRU, the paper\'s model"', arg=names)
    assert page.locator(names).all_inner_texts() == ["GRU, the paper's model", "Toy RNN B, not in the paper"]
    page.asked.clear()
    fetched = []
    page.on("request", lambda request: fetched.append(urlsplit(request.url).path))

    page.locator("#fig-connectivity .unit-toggle[data-unit=lstm]").click()
    page.wait_for_function("(selector) => document.querySelectorAll(selector).length === 3", arg=names)
    page.wait_for_function("() => document.querySelector('#fig-connectivity [data-unit=lstm] .row-word')?.textContent")
    assert page.locator(names).all_inner_texts() == ["GRU, the paper's model", "LSTM, the paper's model", "Toy RNN B, not in the paper"]
    assert "/static/data/paper/lstm.json" in fetched and "/static/data/paper/gru.json" not in fetched
    assert all(named == {"lstm"} for _, named in page.asked), page.asked

    # Without a unit the paper trained, its view has nothing to show: our models' rows come back, and the switch goes.
    page.locator("#fig-connectivity .unit-toggle[data-unit=gru]").click()
    page.locator("#fig-connectivity .unit-toggle[data-unit=lstm]").click()
    page.wait_for_function("(selector) => [...document.querySelectorAll(selector)].map((name) => name.textContent).join() === 'Toy RNN B'", arg=names)
    page.wait_for_function("() => document.querySelector('#fig-connectivity .char.selected')?.dataset.connectivity")
    assert page.locator("#fig-connectivity fieldset.source-toggle").is_hidden()
    page.wait_for_function("() => new URL(location.href).searchParams.get('source') === null")
    assert page.console_errors == []
