"""Global CLI options (--debug, --quiet) and the one place that reads the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["STATE", "CliState", "store_url"]


@dataclass
class CliState:
    debug: bool = False
    quiet: bool = False


STATE = CliState()


def store_url() -> str:
    """``GARRISON_DB_URL`` or the SQLite file ``.garrison/garrison.db`` under the working directory."""
    url = os.environ.get("GARRISON_DB_URL")
    if url:
        return url
    from garrison.store import default_url

    return default_url(Path.cwd())
