"""The units' step diagrams: standalone SVGs that the article shows as images, the built-in units' files and
those the installed unit packages bring (the vanilla RNN brings none: the article draws a generic one)."""

import xml.etree.ElementTree as ET

import pytest

from models.units import get_unit, registered_units

SVG = "{http://www.w3.org/2000/svg}"
# What an <img> drawing of the file reads from attributes alone, with no page stylesheet to fall back on.
TEXT_STYLE = ("fill", "font-size")


def inherited(element: ET.Element, parents: dict[ET.Element, ET.Element], name: str) -> str | None:
    while element is not None:
        if name in element.attrib:
            return element.attrib[name]
        element = parents.get(element)
    return None


@pytest.mark.parametrize("name", [name for name, unit in registered_units().items() if unit.diagram is not None])
def test_diagram_is_a_standalone_svg_with_its_own_sizes_and_text_styles(name):
    root = ET.fromstring(get_unit(name).diagram)
    assert root.tag == f"{SVG}svg"
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("620", "300", "0 0 620 300")
    assert root.find(f"{SVG}title").text == f"One {get_unit(name).display_name} step"
    parents = {child: parent for parent in root.iter() for child in parent}
    texts = list(root.iter(f"{SVG}text"))
    assert len(texts) >= 10
    for text in texts:
        assert all(inherited(text, parents, style) for style in TEXT_STYLE), ET.tostring(text)
    assert inherited(texts[0], parents, "font-family")
    # Nothing in it may run or fetch: no scripts, no event handlers, no links outside the file.
    for element in root.iter():
        assert element.tag not in (f"{SVG}script", f"{SVG}foreignObject", f"{SVG}image")
        assert not any(attribute.startswith("on") for attribute in element.attrib)
        assert all(not value.startswith(("http", "//", "javascript:")) for value in element.attrib.values())
