"""ModelScan over a list of paths (run with .bench-env-modelscan/bin/python): any issue is "flagged"."""

from __future__ import annotations

from _runner import Verdict, run
from modelscan.modelscan import ModelScan
from modelscan.settings import DEFAULT_SETTINGS

_SCANNER = ModelScan(settings=DEFAULT_SETTINGS)


def scan(path: str) -> Verdict:
    report = _SCANNER.scan(path)
    issues, errors = report["issues"], report["errors"]
    if issues:
        return "flagged", "; ".join(f"{i.get('severity')} {i.get('operator')}" for i in issues)[:300]
    if errors:
        return "error", "; ".join(str(e.get("description", e)) for e in errors)[:300]
    if not report["summary"]["scanned"]["total_scanned"]:
        return "skipped", "; ".join(s["description"] for s in report["summary"]["skipped"]["skipped_files"])[
            :300
        ]
    return "clean", ""


if __name__ == "__main__":
    run(scan)
