"""``garrison demo``: an offline end-to-end audit on data scikit-learn ships.

Trains a small pipeline on the bundled breast-cancer data, saves it with skops, writes train/test CSVs and a
``garrison.yaml`` next to them, runs the full audit with every installed check and writes the reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from garrison.audit.check import CheckRegistry
from garrison.audit.progress import Progress
from garrison.audit.runner import audit
from garrison.core.audit_report import Report
from garrison.core.config import REPORT_FORMATS, load_config

__all__ = ["DemoResult", "run_demo", "write_demo_project"]

DEMO_CONFIG = """\
# Garrison demo audit: a scikit-learn pipeline on the breast-cancer data scikit-learn ships.
version: 1
project: garrison-demo
seed: 0
model:
  name: breast-cancer-logreg
  path: model.skops
data:
  train: {{path: train.csv, label: target}}
  test: {{path: test.csv, label: target}}
checks:
  fuzzing: {{budget_s: 120}}
  performance: {{budget_s: 120}}
policy:
  fail_on: high
  thresholds:
    performance.accuracy: {{min: 0.9}}
    performance.ece: {{max: 0.1}}
report:
  output: {report_dir}
  formats: [{formats}]
"""


@dataclass(frozen=True)
class DemoResult:
    workdir: Path
    config_path: Path
    report: Report
    report_dir: Path
    files: dict[str, Path]


def write_demo_project(workdir: Path, *, report_dir: Path, seed: int = 0) -> Path:
    """Train the demo model and write model, data and config into ``workdir``. Returns the config path."""
    import skops.io
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    workdir.mkdir(parents=True, exist_ok=True)
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    train, test = train_test_split(frame, test_size=0.3, random_state=seed, stratify=frame["target"])
    train.to_csv(workdir / "train.csv", index=False)
    test.to_csv(workdir / "test.csv", index=False)
    features = [c for c in frame.columns if c != "target"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    model.fit(train[features], train["target"])
    skops.io.dump(model, workdir / "model.skops")
    rel = Path(report_dir).resolve()
    config_path = workdir / "garrison.yaml"
    config_path.write_text(
        DEMO_CONFIG.format(report_dir=str(rel), formats=", ".join(REPORT_FORMATS)), encoding="utf-8"
    )
    return config_path


def run_demo(
    workdir: Path,
    *,
    report_dir: Path,
    progress: Progress | None = None,
    registry: CheckRegistry | None = None,
    formats: Sequence[str] = REPORT_FORMATS,
) -> DemoResult:
    """Write the demo project, audit it with every installed check, and write every report format."""
    from garrison.report import write_reports

    config_path = write_demo_project(workdir, report_dir=report_dir)
    config = load_config(config_path)
    report = audit(config, registry=registry, progress=progress)
    files = write_reports(report, report_dir, formats)
    return DemoResult(workdir, config_path, report, report_dir, files)
