"""Reach and use in a real browser (issue 33): the copy test beside reach-10 (Figure 5b), the counterfactual in
Figure 4, and the vanilla RNN unrolled beside a gated unit (Figure 5c), at 1280 and 375 px, with axe-core.

The server serves the tiny GRU, LSTM and Nested LSTM and a tiny vanilla RNN (tests/reach_checkpoints.py), whose
metrics.json carries a copy test in the evaluation's format.
"""


import httpx
import pytest
from conftest import serve_app
from reach_checkpoints import UNITS, write_reach_checkpoints
from test_article import AXE, EXAMPLE_TEXT, TEXT_COLOURS_JS, WALKTHROUGH, browser, contrast, page_opener  # noqa: F401  (browser: a fixture)

from app.formatting import formatted, percent

VIEWPORTS = [pytest.param((1280, 900), id="1280px"), pytest.param((375, 740), id="375px")]
# The "g" of the second "grammar"; the word just before it is "a".
POSITION = WALKTHROUGH["2"]
WORD_A = EXAMPLE_TEXT.rindex(" a ", 0, POSITION) + 1


@pytest.fixture(scope="module")
def reach_server(tmp_path_factory: pytest.TempPathFactory):
    directory = write_reach_checkpoints(tmp_path_factory.mktemp("reach_browser"))
    with serve_app(directory) as url:
        yield url


@pytest.fixture()
def open_page(browser, reach_server):  # noqa: F811  (browser: the fixture imported above)
    """Opens a path with every unit in Figures 1, 3 and 4 (?units=; the paper's three are the default), the vanilla RNN's among them."""
    with page_opener(browser, reach_server) as open_path:

        def open_with_every_unit(path, **options):
            return open_path(f"{path}{'&' if '?' in path else '?'}units={','.join(UNITS)}", **options)

        yield open_with_every_unit


def metrics(reach_server: str) -> dict:
    return {model["id"]: model for model in httpx.get(reach_server + "/api/models", timeout=60).json()}


def show(page, figure: str) -> None:
    page.locator(figure).scroll_into_view_if_needed()
    page.wait_for_function("(figure) => document.querySelector(figure).dataset.rendered === 'true'", arg=figure)


def replace_by_typed_word(page, word: str, unfold: bool = True) -> None:
    """In Figure 4's counterfactual, replace the word chosen by `word`, and wait for the results."""
    figure = page.locator("#fig-connectivity")
    if unfold:
        figure.locator(".counterfactual summary").click()
    figure.get_by_label("a word I type").check()
    figure.locator("input[name=typed-word]").fill(word)
    figure.get_by_role("button", name="Replace").click()
    page.wait_for_function("() => document.querySelector('#fig-connectivity .counterfactual-result').textContent")


def fits_the_screen(page, width: int) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_copy_test_figure_shows_each_units_gain_by_gap_beside_its_reach(open_page, reach_server, viewport):
    models = metrics(reach_server)
    page = open_page("/", viewport=viewport)
    show(page, "#fig-intervention")
    figure = page.locator("#fig-intervention")
    for unit in UNITS:
        buckets = models[unit]["intervention"]["buckets"]
        gains = figure.locator(f".unit-row[data-unit={unit}] g.gap").evaluate_all("gaps => gaps.map((g) => Number(g.dataset.gain))")
        assert gains == pytest.approx([bucket["gain_space"] for bucket in buckets])
        reach = figure.locator(f"g.reach[data-unit={unit}]").get_attribute("data-reach")
        assert float(reach) == pytest.approx(models[unit]["memory"]["test"]["reach_10"])
    # Every number of the prose is a metrics.json number, written as the page writes it.
    for span in figure.locator(".intervention-prose [data-source]").all():
        path = span.get_attribute("data-source").removeprefix("metrics.json:models.").split(".")
        value = models[path[0]]
        for key in path[1:]:
            value = value[int(key)] if isinstance(value, list) else value[key]
        assert span.inner_text() == formatted(span.get_attribute("data-format"), value)
    prose = figure.locator(".intervention-prose").inner_text()
    assert "The two agree" in prose and "GRU, LSTM, Nested LSTM and Vanilla RNN" in prose
    assert "interval of the Nested LSTM and the Vanilla RNN reaches 0" in prose

    # Keyboard: the chart takes focus and the arrow keys read out one value at a time.
    figure.locator(".chart-frame").focus()
    page.keyboard.press("ArrowRight")
    readout = figure.locator(".status")
    assert readout.inner_text().startswith("GRU, gap 5–24 characters: gain 0.116 nats at the repeat's space")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    assert readout.inner_text().startswith("LSTM, gap 25–59 characters: gain 0.042 nats")
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    assert readout.inner_text().startswith("LSTM, reach-10: 6.0")
    figure.get_by_label("at its first letter").check()
    gains = figure.locator(".unit-row[data-unit=gru] g.gap").evaluate_all("gaps => gaps.map((g) => Number(g.dataset.gain))")
    assert gains == pytest.approx([bucket["gain_first_letter"] for bucket in models["gru"]["intervention"]["buckets"]])
    assert fits_the_screen(page, viewport[0])
    assert page.console_errors == []


def panel_state(page, unit: str) -> dict:
    panel = page.locator(f"#fig-connectivity .text-panel[data-unit={unit}]")
    return {
        "guesses": panel.locator(".suggestion").evaluate_all(
            "buttons => buttons.map((b) => [b.querySelector('.word').textContent, b.querySelector('.probability').textContent])"),
        "row": panel.locator(".char").evaluate_all("chars => chars.map((c) => c.dataset.connectivity)"),
        "text": panel.locator(".char-line").text_content(),
    }


def wait_for_panels(page) -> None:
    page.locator("#fig-connectivity").scroll_into_view_if_needed()
    page.wait_for_function(
        """(units) => {
              const lines = [...document.querySelectorAll('#fig-connectivity .char-line')];
              return lines.length === units && lines.every((line) => line.querySelector('.char.selected')?.dataset.connectivity);
            }""",
        arg=len(UNITS),
    )


def normalised(row: list[float], position: int) -> list[str]:
    peak = max(row[: position + 1])
    return [f"{value / peak:.4f}" if index <= position else "" for index, value in enumerate(row)]


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_word_pointed_at_and_replaced_changes_the_guesses_and_the_row_and_undo_restores_them(open_page, reach_server, viewport):
    page = open_page(f"/?position={POSITION}", viewport=viewport)
    wait_for_panels(page)
    figure = page.locator("#fig-connectivity")
    before = {unit: panel_state(page, unit) for unit in UNITS}

    figure.locator(".counterfactual summary").click()
    figure.get_by_role("button", name="point at it in the text").click()
    figure.locator(f".text-panel[data-unit=gru] .char[data-position='{WORD_A}']").click()
    assert figure.locator("select[name=replace-word]").input_value() == str(WORD_A)
    replace_by_typed_word(page, "the", unfold=False)

    answer = httpx.post(reach_server + "/api/counterfactual", json={
        "text": EXAMPLE_TEXT, "position": POSITION, "replace_at": WORD_A, "replace_with": "typed_word", "typed_word": "the",
        "models": UNITS,
    }, timeout=60).json()
    edited, moved = answer["edited_text"], answer["edited_position"]
    assert moved == POSITION + 2
    changed = 0
    for unit in UNITS:
        result = answer["models"][unit]
        after = panel_state(page, unit)
        assert after["text"] == edited
        # The panel shows the edited text's guesses and row at the same character, as the API gives them.
        assert [word for word, _ in after["guesses"]] == [item["word"] for item in result["after"]]
        assert after["row"] == normalised(result["connectivity"]["connectivity"], moved) + [""] * (len(edited) - moved - 1)
        assert after["row"] != before[unit]["row"]
        changed += result["probability_after"] != result["probability_before"]
        line = figure.locator(f".text-panel[data-unit={unit}] .counterfactual-result").inner_text()
        assert f"First guess before, “{result['word']}”" in line
        assert f"{'−' if result['change_nats'] < 0 else '+'}{abs(result['change_nats']):.3f} nats" in line
    assert changed == len(UNITS)

    figure.get_by_role("button", name="Undo").click()
    page.wait_for_function("() => !document.querySelector('#fig-connectivity .counterfactual-result').textContent")
    assert {unit: panel_state(page, unit) for unit in UNITS} == before
    assert fits_the_screen(page, viewport[0])
    assert page.console_errors == []


def test_the_counterfactual_works_from_the_keyboard_alone(open_page, reach_server):
    page = open_page(f"/?position={POSITION}")
    wait_for_panels(page)
    figure = page.locator("#fig-connectivity")
    before = panel_state(page, "lstm")
    # Offered first: the earlier "grammar", the word being typed at the position.
    select = figure.locator("select[name=replace-word]")
    first_grammar = EXAMPLE_TEXT.index("grammar")
    assert select.input_value() == str(first_grammar)
    figure.locator(".counterfactual summary").focus()
    page.keyboard.press("Enter")  # unfolds the controls
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "replace-word"
    page.keyboard.press("Home")  # the nearest earlier word: "a"
    assert select.input_value() == str(WORD_A)
    page.keyboard.press("Tab")  # the pointing button
    page.keyboard.press("Tab")  # the replacement choices, "another word of the same length" first
    page.keyboard.press("ArrowDown")  # "a word I type", which sends focus to the box
    assert page.evaluate("document.activeElement.name") == "typed-word"
    page.keyboard.type("one")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#fig-connectivity .counterfactual-result').textContent")
    assert panel_state(page, "lstm")["text"] == EXAMPLE_TEXT[:WORD_A] + "one" + EXAMPLE_TEXT[WORD_A + 1 :]
    # While the edit is shown, the arrow keys leave the position where the edit was asked.
    figure.locator(".char-line").first.focus()
    page.keyboard.press("ArrowRight")
    assert "Undo to move it again" in figure.locator(".counterfactual .status").inner_text()
    figure.get_by_role("button", name="Undo").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => !document.querySelector('#fig-connectivity .counterfactual-result').textContent")
    assert panel_state(page, "lstm") == before
    assert page.console_errors == []


def test_each_walkthrough_note_gives_the_share_on_its_earlier_word_and_the_grammar_note_the_copy_test(open_page, reach_server):
    models = metrics(reach_server)
    page = open_page("/")
    wait_for_panels(page)
    page.wait_for_function("() => [...document.querySelectorAll('[data-walkthrough-note]')].every((note) => note.textContent)")
    for step, word in (("1", "advanced"), ("2", "grammar"), ("3", "taught")):
        position = WALKTHROUGH[step]
        start = EXAMPLE_TEXT.rindex(f" {word} ", 0, EXAMPLE_TEXT.rindex(" ", 0, position + 1) + 1) + 1
        note = page.locator(f"[data-walkthrough-note='{step}']").inner_text()
        for unit in UNITS:
            # The notes' rows are for the word in the text, as the paper's are, or for the model's own guess where it seems
            # not to know that word (static/figures/connectivity.js decides): the share is that row's, either way.
            shares = []
            for word_asked in (word_at(position), None):
                question = {"text": EXAMPLE_TEXT, "model": unit, "positions": [position], **({"word": word_asked} if word_asked else {})}
                row = httpx.post(reach_server + "/api/connectivity", json=question, timeout=60).json()["rows"][0]["connectivity"]
                shares.append(sum(row[start : start + len(word)]) / sum(row))
            assert any(f"{percent(share)} of it lies on the earlier “{word}”" in note for share in shares), (unit, shares, note)
    grammar = page.locator("[data-walkthrough-note='2']").inner_text()
    example = models["gru"]["intervention"]["example"]
    assert f"“{example['replacement']}” in place of the first “grammar”" in grammar
    for unit in UNITS:
        recorded = models[unit]["intervention"]["example"]
        assert (f"{models[unit]['name']} {percent(recorded['probability_with'])} with it and "
                f"{percent(recorded['probability_without'])} without (+{recorded['gain']:.3f} nats)") in grammar
    assert "copy test" not in page.locator("[data-walkthrough-note='1']").inner_text()
    assert page.console_errors == []


def word_at(position: int) -> str:
    """The word a position of the example belongs to (a space to the word after it), as text-panels.js's wordAt."""
    start = position + 1 if EXAMPLE_TEXT[position] == " " else EXAMPLE_TEXT.rindex(" ", 0, position + 1) + 1
    return EXAMPLE_TEXT[start:].split(" ")[0]


def top_layer_norms(page, unit: str) -> dict[int, float]:
    cells = page.locator(f"#fig-vanishing .vanishing-panel[data-unit={unit}] g.cell[data-row=layer-2]").evaluate_all(
        "cells => cells.map((c) => [Number(c.dataset.step), c.dataset.norm])")
    return {step: float(norm) for step, norm in cells if norm != ""}


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_unrolled_vanilla_rnn_shading_falls_off_with_distance(open_page, reach_server, viewport):
    page = open_page("/", viewport=viewport)
    show(page, "#fig-vanishing")
    figure = page.locator("#fig-vanishing")
    text = EXAMPLE_TEXT[:60]
    last = len(text) - 1
    page.wait_for_function("() => document.querySelectorAll('#fig-vanishing .vanishing-panel:not(.stale)').length === 2")
    norms = top_layer_norms(page, "rnn")
    assert sorted(norms) == list(range(last + 1))
    assert norms[last - 1] > norms[last - 10] > norms[last - 30] and norms[last - 30] < 1e-3 * norms[last - 1]
    expected = httpx.post(reach_server + "/api/unrolled", json={"text": text, "model": "rnn", "positions": [last]}, timeout=60).json()
    assert [norms[step] for step in range(last + 1)] == expected["rows"][0]["layers"][1]
    assert "Vanilla RNN" in figure.locator(".vanishing-caption").first.inner_text()

    # A column chooses the output position: hover it, or move with the keys.
    column = 30
    figure.locator(f".vanishing-panel[data-unit=rnn] g.cell[data-row=input][data-step='{column}']").hover()
    page.wait_for_function("(c) => document.querySelector('#fig-vanishing .unrolled').getAttribute('aria-valuenow') === String(c)", arg=column)
    page.wait_for_function("() => document.querySelectorAll('#fig-vanishing .vanishing-panel:not(.stale)').length === 2")
    assert sorted(top_layer_norms(page, "rnn")) == list(range(column + 1))
    figure.locator(".unrolled").first.focus()
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("(c) => document.querySelector('#fig-vanishing .unrolled').getAttribute('aria-valuenow') === String(c)", arg=column - 1)
    assert "position 29" in figure.locator(".unrolled").first.get_attribute("aria-valuetext")

    # The gated unit beside it is the reader's choice, every served unit but the vanilla RNN.
    options = figure.locator("select[name=gated-unit] option").evaluate_all("options => options.map((o) => o.value)")
    assert options == [unit for unit in UNITS if unit != "rnn"]
    figure.locator("select[name=gated-unit]").select_option("nlstm")
    page.wait_for_function("() => document.querySelectorAll('#fig-vanishing .vanishing-panel')[1].dataset.unit === 'nlstm'")
    page.wait_for_function("() => document.querySelectorAll('#fig-vanishing .vanishing-panel:not(.stale)').length === 2")
    # One layer: the Nested LSTM's depth is inside the layer.
    assert figure.locator(".vanishing-panel[data-unit=nlstm] .row-label").all_text_contents() == ["output", "layer 1", "input"]
    assert fits_the_screen(page, viewport[0])
    assert page.console_errors == []


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_axe_finds_no_serious_violation_in_the_new_figures(open_page, viewport):
    page = open_page(f"/?position={POSITION}", viewport=viewport, bypass_csp=True)
    for figure in ("#fig-intervention", "#fig-vanishing", "#fig-connectivity"):
        show(page, figure)
    wait_for_panels(page)
    page.wait_for_function("() => document.querySelectorAll('#fig-vanishing .vanishing-panel:not(.stale)').length === 2")
    # With an edit shown, so its results are checked too.
    replace_by_typed_word(page, "the")
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        """async () => (await axe.run(document, { resultTypes: ["violations"] })).violations
              .map((violation) => ({ id: violation.id, impact: violation.impact, nodes: violation.nodes.map((node) => node.target.join(" ")) }))"""
    )
    assert [violation for violation in violations if violation["impact"] in ("serious", "critical")] == []
    assert page.console_errors == []


@pytest.mark.parametrize("colour_scheme", ["light", "dark"])
def test_every_text_of_the_new_figures_has_a_contrast_of_at_least_4_5(open_page, colour_scheme):
    page = open_page(f"/?position={POSITION}", color_scheme=colour_scheme)
    for figure in ("#fig-intervention", "#fig-vanishing"):
        show(page, figure)
    page.wait_for_function("() => document.querySelectorAll('#fig-vanishing .vanishing-panel:not(.stale)').length === 2")
    # A column halfway: shaded cells before it, blank ones after.
    page.locator("#fig-vanishing .vanishing-panel[data-unit=rnn] g.cell[data-row=input][data-step='30']").hover()
    page.wait_for_function("() => document.querySelector('#fig-vanishing .unrolled').getAttribute('aria-valuenow') === '30'")
    page.wait_for_function("() => document.querySelectorAll('#fig-vanishing .vanishing-panel:not(.stale)').length === 2")
    wait_for_panels(page)
    replace_by_typed_word(page, "the")
    texts = page.evaluate(TEXT_COLOURS_JS, "#fig-intervention, #fig-vanishing, #fig-connectivity .counterfactual, .counterfactual-result")
    assert len(texts) > 60
    low = [(item["text"], item["where"], round(contrast(item["ink"], item["behind"]), 2)) for item in texts if contrast(item["ink"], item["behind"]) < 4.5]
    assert low == []
