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


def test_image_grid_colours_pixels_by_value_and_sign() -> None:
    import numpy as np

    from garrison.audit.checks.svg import image_grid

    image = np.array([[0.0, 1.0], [0.5, 0.5]])
    attribution = np.array([[-2.0, 0.0], [1.0, 2.0]])
    root = ET.fromstring(image_grid([("in <x>", image, False), ("attr", attribution, True)], title="t"))
    panels = root.findall(f"{SVG}g")
    assert [p.find(f"{SVG}title").text for p in panels] == ["in <x>", "attr"]  # type: ignore[union-attr]
    fills = [[r.get("fill") for r in p.findall(f"{SVG}rect")][:4] for p in panels]
    assert fills[0] == ["#000000", "#ffffff", "#808080", "#808080"]  # grey from min to max
    assert fills[1] == ["#0000ff", "#ffffff", "#ff8080", "#ff0000"]  # blue negative, white zero, red positive


def test_large_images_are_block_averaged_to_at_most_32_pixels_a_side() -> None:
    import numpy as np

    from garrison.audit.checks.svg import image_grid

    root = ET.fromstring(image_grid([("big", np.ones((100, 64)), False)], title="t"))
    pixels = root.find(f"{SVG}g").findall(f"{SVG}rect")  # type: ignore[union-attr]
    assert len(pixels) == 25 * 16 + 1  # 100 x 64 in blocks of 4, plus the frame
