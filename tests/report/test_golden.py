"""Every format of the fixed report (conftest.build_report) against its committed golden file.

After an intended change of output, regenerate the golden files and review the diff:

    GARRISON_UPDATE_GOLDEN=1 .venv/bin/pytest tests/report/test_golden.py
"""

import os
from pathlib import Path

import pytest

from garrison.core import Report
from garrison.report import FILE_NAMES, FORMATS, read_report, render, to_json

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("GARRISON_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("fmt", FORMATS)
def test_output_matches_golden_file(report: Report, fmt: str) -> None:
    text = render(report, fmt)
    golden = GOLDEN_DIR / FILE_NAMES[fmt]
    if UPDATE:
        golden.write_bytes(text.encode("utf-8"))
    assert golden.exists(), f"{golden} is missing: run with GARRISON_UPDATE_GOLDEN=1"
    assert text == golden.read_bytes().decode("utf-8")


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_report_gives_byte_identical_output(report: Report, fmt: str, tmp_path: Path) -> None:
    """Rendering twice, or from the report read back from its JSON, gives the same bytes."""
    path = tmp_path / "report.json"
    path.write_text(to_json(report), encoding="utf-8")
    assert render(report, fmt) == render(report, fmt) == render(read_report(path), fmt)
