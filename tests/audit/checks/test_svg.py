from __future__ import annotations

import xml.etree.ElementTree as ET

from garrison.audit.checks import reliability_diagram

SVG = "{http://www.w3.org/2000/svg}"


def test_points_sit_where_their_values_say() -> None:
    svg = reliability_diagram([0.0, 0.5, 1.0], [0.0, 0.25, 1.0], [4, 0, 4])
    root = ET.fromstring(svg)
    circles = root.findall(f"{SVG}circle")
    # the empty bin is left out; the plot spans 40..280 on both axes, y growing downwards
    assert [(c.get("cx"), c.get("cy")) for c in circles] == [("40.00", "280.00"), ("280.00", "40.00")]
    assert root.find(f"{SVG}polyline").get("points") == "40.00,280.00 280.00,40.00"  # type: ignore[union-attr]


def test_title_is_escaped_and_output_is_deterministic() -> None:
    a = reliability_diagram([0.3], [0.7], [2], title="<model> & co")
    assert a == reliability_diagram([0.3], [0.7], [2], title="<model> & co")
    assert ET.fromstring(a).find(f"{SVG}title").text == "<model> & co"  # type: ignore[union-attr]


def test_no_bins_is_still_a_valid_figure() -> None:
    root = ET.fromstring(reliability_diagram([], [], []))
    assert root.findall(f"{SVG}circle") == []
