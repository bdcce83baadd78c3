"""Issue 31 in the browser, on the tiny checkpoints at 1280 and 375 px: integrated gradients that show they add up,
a phone view of Figure 4 that shows the whole text, walkthrough links that keep their note's position, and
equations, diagrams and tables that fit a phone.
"""

import json
import re
import xml.etree.ElementTree as ET

import pytest
from test_article import EXAMPLE_TEXT, WALKTHROUGH, api, browser, open_page, selected_positions, show_connectivity_figure

from models.units import get_unit

__all__ = ["browser", "open_page"]  # fixtures, used by name

PHONE = (375, 740)
# What the page warns at (static/text-panels.js, COMPLETENESS_WARNING).
WARNING_SHARE = 0.05
# Which word the prose's links point at: the first and the second "grammar" of the example sentence.
FIRST_GRAMMAR = range(EXAMPLE_TEXT.index(" grammar") + 1, EXAMPLE_TEXT.index(" grammar") + 1 + len("grammar"))
SECOND_GRAMMAR = range(EXAMPLE_TEXT.rindex(" grammar") + 1, EXAMPLE_TEXT.rindex(" grammar") + 1 + len("grammar"))


def score(value):
    """The page's score format (formatScore in static/text-panels.js)."""
    return f"{'−' if value < 0 else ''}{abs(value):.2f}"


def rgb(page, selector):
    return page.eval_on_selector_all(selector, "elements => elements.map((e) => getComputedStyle(e).backgroundColor.match(/\\d+/g).map(Number))")


def wait_for_rows(page, count=3):
    page.wait_for_function(
        "(count) => [...document.querySelectorAll('#fig-connectivity .row-check')].filter((check) => !check.hidden && check.textContent).length === count",
        arg=count,
    )


def test_integrated_gradients_show_what_each_row_sums_to_on_a_diverging_scale(open_page, live_server):
    position = WALKTHROUGH["1"]
    page = open_page(f"/?position={position}&method=integrated_gradients", viewport=(1280, 900))
    show_connectivity_figure(page)
    wait_for_rows(page)
    for unit in ("gru", "lstm", "nlstm"):
        row = api(live_server, "/api/connectivity", {"text": EXAMPLE_TEXT, "model": unit, "positions": [position], "method": "integrated_gradients"})["rows"][0]
        assert row["completeness_error"] <= WARNING_SHARE * abs(row["score_change"])
        check = page.locator(f"#fig-connectivity [data-unit={unit}] .row-check")
        text = check.inner_text()
        assert f"The row sums to {score(sum(row['connectivity']))}; the score change from the baseline" in text
        assert f"is {score(row['score_change'])}, off by" in text and f"({row['integration_steps']}\u00a0steps)" in text
        assert "warning" not in (check.get_attribute("class") or "")
        assert page.locator(f"#fig-connectivity [data-unit={unit}].incomplete").count() == 0
        # The colours follow the signs: red where a character lowers the score, blue where it raises it, white at 0 (spaces).
        values = row["connectivity"]
        colours = rgb(page, f"#fig-connectivity [data-unit={unit}] .char-line .char")
        lowest, highest = values.index(min(values)), values.index(max(values))
        assert min(values) < 0 < max(values)
        assert colours[lowest][0] > colours[lowest][2] and colours[highest][2] > colours[highest][0]
        assert all(channel >= 235 for channel in colours[EXAMPLE_TEXT.index(" ")]), colours[0]
    legend = page.locator("#fig-connectivity .legend")
    assert legend.locator(".legend-end").all_inner_texts() == ["lowers the score", "raises it"]
    assert legend.locator(".legend-ticks text").all_text_contents() == ["−1", "−0.5", "0", "0.5", "1"]
    assert "largest magnitude" in legend.inner_text()
    # Back to the paper's measure: no sums, the one-sided scale.
    page.locator("#fig-connectivity select[name=method]").select_option("gradient")
    page.wait_for_function("() => [...document.querySelectorAll('#fig-connectivity .row-check')].every((check) => check.hidden)")
    assert legend.locator(".legend-end").all_inner_texts() == ["weak", "strong"]
    assert page.console_errors == []


def test_a_row_that_misses_its_score_change_by_more_than_5_percent_is_drawn_with_a_warning(open_page):
    """The warning says why: the LSTM's rows miss by a jump the path cannot be cut fine enough to see, the others' ran out of work."""

    def miss_by_a_tenth(route):
        response = route.fetch()
        body = response.json()
        for row in body["rows"]:
            row["completeness_error"] = 0.1 * abs(row["score_change"])
            row["unresolved_jump"] = row["completeness_error"] if body["model"] == "lstm" else 0
        route.fulfill(response=response, body=json.dumps(body))

    page = open_page("/", viewport=(1280, 900))
    page.route(re.compile(r".*/api/connectivity.*integrated_gradients.*"), miss_by_a_tenth)
    show_connectivity_figure(page)
    page.locator("#fig-connectivity select[name=method]").select_option("integrated_gradients")
    wait_for_rows(page)
    for unit in ("gru", "lstm", "nlstm"):
        check = page.locator(f"#fig-connectivity [data-unit={unit}] .row-check")
        assert check.inner_text().startswith("⚠ ") and "warning" in check.get_attribute("class")
        if unit == "lstm":
            assert "off by 10.0\u00a0% after" in check.inner_text() and "float32 cannot tell apart" in check.inner_text()
        else:
            assert "off by 10.0\u00a0% even after" in check.inner_text() and "work limit" in check.inner_text()
    assert page.locator("#fig-connectivity .text-panel.incomplete").count() == 3
    outline = page.eval_on_selector("#fig-connectivity .text-panel.incomplete .char-line", "line => getComputedStyle(line).outlineStyle")
    assert outline == "dashed"
    assert page.console_errors == []


def window_lines(page, unit="gru"):
    """The positions shown in a panel's window, line by line, as the browser lays them out."""
    return page.eval_on_selector(
        f"#fig-connectivity [data-unit={unit}] .char-line",
        """line => {
            const lines = new Map();
            line.querySelectorAll('.char:not(.outside)').forEach((char) => {
                const top = Math.round(char.getBoundingClientRect().top);
                lines.set(top, [...(lines.get(top) ?? []), Number(char.dataset.position)]);
            });
            return [...lines.values()];
        }""",
    )


def test_phone_view_shows_the_whole_text_and_moves_the_window_not_the_position(open_page):
    position = WALKTHROUGH["2"]  # the second "grammar": the first is 130 characters back
    page = open_page(f"/?position={position}", viewport=PHONE, reduced_motion="reduce")
    show_connectivity_figure(page)
    gru = "#fig-connectivity [data-unit=gru]"

    # The whole text, small, shaded as the window is: the first "grammar" is there, coloured, with the position framed.
    overview = page.locator(f"{gru} .overview")
    assert overview.is_visible() and overview.inner_text().replace("\n", "") == EXAMPLE_TEXT
    shaded = rgb(page, f"{gru} .overview-char")
    assert all(len(shaded[index]) == 3 for index in FIRST_GRAMMAR), "rgb(…): painted, not transparent"
    assert page.eval_on_selector_all(f"{gru} .overview-char.current", "chars => chars.map((c) => Number(c.dataset.position))") == [position]
    in_window = page.eval_on_selector_all(f"{gru} .overview-char.in-window", "chars => chars.map((c) => Number(c.dataset.position))")
    assert position in in_window and [p for p in range(min(in_window), max(in_window) + 1)] == in_window

    # Captions stay: which word each row is for.
    for unit in ("gru", "lstm", "nlstm"):
        caption = page.locator(f"#fig-connectivity [data-unit={unit}] .row-caption")
        assert caption.is_visible() and caption.locator(".row-word").inner_text()

    # The pager moves the window back to the first "grammar"; the position stays where it was.
    for _ in range(12):
        if FIRST_GRAMMAR[0] in [p for line in window_lines(page) for p in line]:
            break
        page.locator("#fig-connectivity").get_by_role("button", name="earlier line").click()
    shown = [p for line in window_lines(page) for p in line]
    assert set(FIRST_GRAMMAR) <= set(shown)
    assert selected_positions(page, "#fig-connectivity") == [position] * 3
    assert f"position={position}" in page.url
    # A tap on the small text moves the window there, not the position either.
    page.locator(f"{gru} .overview-char[data-position='{position}']").click()
    assert position in [p for line in window_lines(page) for p in line]
    assert selected_positions(page, "#fig-connectivity") == [position] * 3

    # Every window line ends between words, whatever the window shows, to the end of the text.
    later = page.locator("#fig-connectivity .window-pager button", has_text="later line")
    while True:
        for line in window_lines(page):
            before, after = line[0] - 1, line[-1] + 1
            assert before < 0 or EXAMPLE_TEXT[before] == " " or EXAMPLE_TEXT[line[0]] == " ", line
            assert after >= len(EXAMPLE_TEXT) or EXAMPLE_TEXT[after] == " " or EXAMPLE_TEXT[line[-1]] == " ", line
        if later.is_disabled():
            break
        later.click()
    assert max(p for line in window_lines(page) for p in line) == len(EXAMPLE_TEXT) - 1

    # Three panels, each with its small text, window, caption and guesses, on one screen.
    page.evaluate("document.querySelector('#fig-connectivity .text-panel').scrollIntoView({ block: 'start' })")
    panels = page.locator("#fig-connectivity .text-panel")
    top = panels.nth(0).bounding_box()["y"]
    bottom = panels.nth(2).bounding_box()["y"] + panels.nth(2).bounding_box()["height"]
    assert bottom - top <= PHONE[1]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE[0]
    assert page.console_errors == []


def test_walkthrough_links_carry_their_position_and_note_2_points_at_both_grammars_from_position_159(open_page):
    page = open_page("/", viewport=(1280, 900))
    show_connectivity_figure(page)
    for step in ("1", "2", "3"):
        note = page.locator(f"#walkthrough-{step}")
        assert note.count() == 1 and note.locator(f"[data-walkthrough-note='{step}']").count() == 1
        page.wait_for_function("(step) => document.querySelector(`[data-walkthrough='${step}']`).getAttribute('href').includes('position=')", arg=step)
        assert page.locator(f"[data-walkthrough='{step}']").get_attribute("href") == f"?position={WALKTHROUGH[step]}#fig-connectivity"
    for key, word in (("inline-0", FIRST_GRAMMAR), ("inline-1", SECOND_GRAMMAR)):
        link = page.locator(f"[data-walkthrough='{key}']")
        assert link.get_attribute("href") == f"?position={WALKTHROUGH['2']}#fig-connectivity"
        link.click()
        page.wait_for_function(
            "(word) => [...document.querySelectorAll('#fig-connectivity [data-unit=gru] .char.marked')].map((c) => Number(c.dataset.position)).join() === word.join()",
            arg=list(word),
        )
        assert selected_positions(page, "#fig-connectivity") == [WALKTHROUGH["2"]] * 3
    # A copied step link opens the same view.
    reopened = open_page(page.locator("[data-walkthrough='3']").get_attribute("href").split("#")[0], viewport=(1280, 900))
    show_connectivity_figure(reopened)
    assert selected_positions(reopened, "#fig-connectivity") == [WALKTHROUGH["3"]] * 3
    assert page.console_errors == [] and reopened.console_errors == []


def test_the_heros_third_letter_link_lands_on_the_third_letter_of_grammar(open_page):
    page = open_page("/", viewport=(1280, 900), reduced_motion="reduce")
    page.wait_for_function("() => document.querySelectorAll('#fig-hero .char.selected').length === 3")
    link = page.locator("[data-hero-link='1']")
    assert link.inner_text() == "its third letter"
    link.click()
    page.wait_for_function("() => document.querySelectorAll('#fig-hero .char.selected[data-position]').length === 3")
    (position,) = set(selected_positions(page, "#fig-hero"))
    assert EXAMPLE_TEXT[position - 2 : position + 1] == "gra" and EXAMPLE_TEXT[position - 3] == " "
    assert page.console_errors == []


def test_walkthrough_notes_compare_rows_for_the_word_in_the_text_and_define_their_reach(open_page, live_server):
    page = open_page("/", viewport=(1280, 900))
    show_connectivity_figure(page)
    page.wait_for_function("() => [...document.querySelectorAll('[data-walkthrough-note]')].every((note) => note.textContent)")
    units = ["gru", "lstm", "nlstm"]
    suggestions = api(live_server, "/api/autocomplete", {"text": EXAMPLE_TEXT, "models": units, "positions": "all"})["models"]
    for step in ("1", "2", "3"):
        position = WALKTHROUGH[step]
        start = EXAMPLE_TEXT.rfind(" ", 0, position + 1) + 1
        word = EXAMPLE_TEXT[start : EXAMPLE_TEXT.find(" ", position)]
        note = page.locator(f"[data-walkthrough-note='{step}']").inner_text()
        assert note.startswith(f"Our models here, for “{word}”, the word in the text, as in the paper's rows: ")
        for unit in units:
            known = word in {entry["word"] for at in suggestions[unit] for entry in at["suggestions"]}
            body = {"text": EXAMPLE_TEXT, "model": unit, "positions": [position], **({"word": word} if known else {})}
            row = api(live_server, "/api/connectivity", body)["rows"][0]["connectivity"]
            share = sum(row[: max(0, start - 1)]) / sum(row)
            whose = "its row" if known else f"its row for “{suggestions[unit][position]['suggestions'][0]['word']}” (it never suggests “{word}”"
            assert f"{share * 100:.{1 if share < 0.1 else 0}f} % of {whose}" in note
            # The reach the note names is defined: the farthest character at 30 % of the row's maximum or more.
            farthest = next(index for index, value in enumerate(row) if value >= 0.3 * max(row))
            reach = "is the current character" if farthest == position else f"is {position - farthest} back"
            assert f"at 30 % of the row's maximum or more {reach}" in note
    assert page.console_errors == []


BLOCK_MATHS = """() => [...document.querySelectorAll("math[display='block']")]
    .filter((math) => math.getBoundingClientRect().width > 0)
    .map((math) => [math.getAttribute('aria-label'), math.scrollWidth, math.clientWidth])"""


@pytest.mark.parametrize("viewport", [(1280, 900), PHONE], ids=["1280px", "375px"])
def test_no_equation_is_clipped(open_page, viewport):
    page = open_page("/", viewport=viewport)
    page.wait_for_function("() => document.querySelectorAll('#fig-units [role=tab]').length === 3")
    clipped = []
    for tab in page.locator("#fig-units [role=tab]").all():
        tab.click()
        clipped += [(label, scroll, client) for label, scroll, client in page.evaluate(BLOCK_MATHS) if scroll > client + 1]
    assert clipped == []
    assert page.console_errors == []


def test_phone_diagrams_keep_readable_labels_and_say_they_scroll(open_page):
    page = open_page("/", viewport=PHONE)
    page.wait_for_function("() => document.querySelectorAll('#fig-units .diagram-scroll img').length === 3")
    for tab in page.locator("#fig-units [role=tab]").all():
        tab.click()
        panel = page.locator(f"#fig-units #{tab.get_attribute('aria-controls')}")
        image = panel.locator(".diagram-scroll img").bounding_box()
        # The SVGs are 620 units wide with labels of 13 and subscripts of 11: shown this wide, they stay about 12 and 10 px.
        assert image["width"] * 13 / 620 >= 11.5
        scroller = panel.locator(".diagram-scroll")
        page.wait_for_function("(id) => document.querySelector(`#${id} .diagram-scroll`).hasAttribute('data-overflows')", arg=tab.get_attribute("aria-controls"))
        assert "scrolls sideways" in scroller.evaluate("s => getComputedStyle(s, '::before').content")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE[0]
    assert page.console_errors == []


def test_phone_tables_keep_their_columns_readable_and_say_they_scroll(open_page):
    page = open_page("/", viewport=PHONE)
    for figure in page.locator("[data-figure]").all():
        figure.scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelectorAll('.table-scroll table.data:not(.claims) tbody tr').length > 0")
    page.wait_for_function("() => [...document.querySelectorAll('[data-figure]')].every((figure) => figure.dataset.rendered === 'true')")
    tables = page.eval_on_selector_all(
        ".table-scroll:has(table.data:not(.claims))",
        """scrollers => scrollers.map((scroller) => ({
            label: scroller.getAttribute('aria-label'),
            overflows: scroller.scrollWidth > scroller.clientWidth,
            marked: scroller.hasAttribute('data-overflows'),
            cue: getComputedStyle(scroller, '::before').content,
            tallest: Math.max(...[...scroller.querySelectorAll('tbody tr')].map((row) => row.getBoundingClientRect().height)),
            narrowest: Math.min(...[...scroller.querySelectorAll('tbody td')].filter((cell) => cell.textContent.length > 20)
                .map((cell) => cell.getBoundingClientRect().width)),
        }))""",
    )
    assert tables
    for table in tables:
        if table["overflows"]:
            assert table["marked"] and "scrolls sideways" in table["cue"], table
        # A long cell wraps in a column wide enough to read, so no row grows into a tower.
        assert table["narrowest"] >= 120 or table["narrowest"] == float("inf"), table
        assert table["tallest"] <= 200, table
    assert page.console_errors == []


def test_the_gru_diagram_feeds_the_candidate_r_times_the_previous_states_linear_map():
    """n = tanh(W_nx x + b + r ⊙ (W_nh h + b')): the tanh box reads x and a product of r with the W· box, which reads h alone."""
    svg = ET.fromstring(get_unit("gru").diagram)
    ns = "{http://www.w3.org/2000/svg}"
    nodes = {}
    for group in svg.iter(f"{ns}g"):
        match = re.fullmatch(r"translate\((\d+),(\d+)\)", group.get("transform", ""))
        texts = [text.text for text in group.findall(f"{ns}text")]
        if match and texts:
            shape = group.find(f"{ns}rect")
            x, y = map(int, match.groups())
            if shape is not None:
                box = (x + float(shape.get("x")), y + float(shape.get("y")), float(shape.get("width")), float(shape.get("height")))
            else:
                ellipse = group.find(f"{ns}ellipse")
                rx, ry = float(ellipse.get("rx")), float(ellipse.get("ry"))
                box = (x - rx, y - ry, 2 * rx, 2 * ry)
            nodes[(texts[0], texts[1] if len(texts) > 1 else f"{x},{y}")] = box

    def node_at(point):
        for name, (x, y, width, height) in nodes.items():
            if x - 2 <= point[0] <= x + width + 2 and y - 2 <= point[1] <= y + height + 2:
                return name
        return None

    wires = []
    for line in svg.iter(f"{ns}polyline"):
        points = [tuple(map(float, point.split(","))) for point in line.get("points").split()]
        wires.append((points, node_at(points[0]), node_at(points[-1])))
    tanh = ("tanh", "n")
    linear = ("W·", "u")
    reset = ("σ", "r")
    into_tanh = [wire for wire in wires if wire[2] == tanh]
    assert len(into_tanh) == 2
    product = next(source for _, source, _ in into_tanh if source is not None)
    assert product[0] == "×"
    assert {source for _, source, target in wires if target == product} == {reset, linear}
    # The tanh box's other input starts on the input wire x_t, below every gate: not on the previous state's lines.
    (x_wire,) = [points for points, source, _ in into_tanh if source is None]
    assert x_wire[0][1] > 230
    # The W· box reads the previous state's line (y = 50) and nothing else.
    assert [points[0][1] for points, _, target in wires if target == linear] == [50.0]
