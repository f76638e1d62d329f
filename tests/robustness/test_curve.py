from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from garrison.robustness.curve import CurvePoint, wilson_interval
from garrison.robustness.figures import accuracy_curve_svg, example_grid_svg


def test_wilson_interval_brackets_the_proportion() -> None:
    lo, hi = wilson_interval(8, 10)
    assert 0.44 < lo < 0.8 < hi < 0.97
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_curve_point_rates() -> None:
    point = CurvePoint(0.1, n=100, robust=30, clean=90, fooled=60)
    assert point.robust_accuracy == 0.3
    assert point.success_rate == pytest.approx(60 / 90)
    assert point.to_dict()["ci_low"] < 0.3 < point.to_dict()["ci_high"]
    assert CurvePoint(0.1, 0, 0, 0, 0).to_dict()["robust_accuracy"] is None


def test_figures_are_well_formed_svg() -> None:
    svg = accuracy_curve_svg([0.1, 0.2], [0.5, 0.1], [0.4, 0.05], [0.6, 0.2], clean=0.9)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and svg.count("<circle") == 3
    rng = np.random.default_rng(0)
    x = rng.random((2, 1, 4, 4))
    grid = example_grid_svg(x, np.clip(x + 0.1, 0, 1))
    ET.fromstring(grid)
    assert grid.count("<rect") == 2 * 3 * 16
    with pytest.raises(ValueError, match="images"):
        example_grid_svg(np.zeros((2, 3)), np.zeros((2, 3)))
