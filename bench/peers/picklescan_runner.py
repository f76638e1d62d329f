"""picklescan over a list of paths (run with .bench-env-picklescan/bin/python): "flagged" where its CLI would
exit 1 (dangerous globals), "error" where it would exit 2."""

from __future__ import annotations

import os

from _runner import Verdict, run
from picklescan.scanner import SafetyLevel, scan_directory_path, scan_file_path


def scan(path: str) -> Verdict:
    result = scan_directory_path(path) if os.path.isdir(path) else scan_file_path(path)
    dangerous = [f"{g.module}.{g.name}" for g in result.globals if g.safety == SafetyLevel.Dangerous]
    if result.issues_count or result.infected_files:
        return "flagged", ", ".join(dangerous)[:300]
    if result.scan_err:
        return "error", "scan error"
    if not result.scanned_files:
        return "skipped", "no file scanned"
    return "clean", f"{result.suspicious_count} suspicious" if result.suspicious_count else ""


if __name__ == "__main__":
    run(scan)
