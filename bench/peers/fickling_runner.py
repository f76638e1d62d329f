"""fickling over a list of paths (run with .bench-env-fickling/bin/python): its loader's graceful scan, zip
archives through scan_zip_archive; "flagged" where the severity is above LIKELY_SAFE, as `--check-safety`."""

from __future__ import annotations

import os
import zipfile

from _runner import Verdict, run
from fickling.loader import scan_file, scan_zip_archive


def _files(path: str) -> list[str]:
    if not os.path.isdir(path):
        return [path]
    return sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names)


def scan(path: str) -> Verdict:
    flagged, errors = [], []
    for file in _files(path):
        results = (
            scan_zip_archive(file, graceful=True)
            if zipfile.is_zipfile(file)
            else {file: scan_file(file, graceful=True)}
        )
        for name, result in results.items():
            if not result.is_safe:
                flagged.append(f"{name}: {result.severity.name}")
            elif result.errors:
                errors.extend(result.errors)
    if flagged:
        return "flagged", "; ".join(flagged)[:300]
    if errors:
        return "error", "; ".join(errors)[:300]
    return "clean", ""


if __name__ == "__main__":
    run(scan)
