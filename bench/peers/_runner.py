"""Shared driver of the peer runners: read a JSON list of paths, scan each with a per-file alarm, print JSON.

Each runner runs inside its peer's own virtual environment and imports only that peer and the standard
library. A record is {"path", "verdict": "flagged" | "clean" | "error" | "skipped", "detail", "seconds"}.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import signal
import sys
import time
from collections.abc import Callable

Verdict = tuple[str, str]


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Timeout


def run(scan: Callable[[str], Verdict], *, per_file_timeout_s: int = 60) -> None:
    """``python runner.py PATHS.json``: scan every path, print one JSON list on stdout."""
    logging.disable(logging.CRITICAL)
    with open(sys.argv[1]) as handle:
        paths = json.load(handle)
    signal.signal(signal.SIGALRM, _alarm)
    records = []
    for path in paths:
        start = time.perf_counter()
        signal.alarm(per_file_timeout_s)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                verdict, detail = scan(path)
        except _Timeout:
            verdict, detail = "error", f"timeout after {per_file_timeout_s} s"
        except BaseException as error:  # a peer crashing on a file is a result, not a bench failure
            verdict, detail = "error", f"{type(error).__name__}: {error}"[:300]
        finally:
            signal.alarm(0)
        records.append(
            {"path": path, "verdict": verdict, "detail": detail, "seconds": time.perf_counter() - start}
        )
    json.dump(records, sys.stdout)
