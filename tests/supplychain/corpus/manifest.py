"""Labels of the corpus: what each generated file is and what a scanner must say about it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["EXPECTED", "Expected", "Sample", "Spec", "read_manifest", "write_manifest"]

Expected = Literal["clean", "malicious", "incomplete"]
EXPECTED: tuple[Expected, ...] = ("clean", "malicious", "incomplete")


@dataclass(frozen=True)
class Sample:
    """One labelled file (or directory) of the corpus.

    ``name`` is the path relative to the corpus directory. ``rules`` are the rule ids a scanner must report;
    an entry ``"GAR-SC-001|GAR-SC-002"`` is met by either id. ``made_by`` names the library that wrote the
    bytes ("sklearn", "torch", ...) or "hand" for streams assembled opcode by opcode.
    """

    name: str
    expected: Expected
    family: str
    technique: str
    rules: tuple[str, ...] = ()
    made_by: str = "hand"
    pickle_based: bool = True

    def __post_init__(self) -> None:
        if self.expected not in EXPECTED:
            raise ValueError(f"`expected` must be one of {EXPECTED}, got {self.expected!r} ({self.name})")
        if self.expected == "clean" and self.rules:
            raise ValueError(f"a clean sample names no rules ({self.name})")

    def missing_rules(self, found: Iterable[str]) -> list[str]:
        """The entries of ``rules`` that none of the ``found`` rule ids meets."""
        found = set(found)
        return [entry for entry in self.rules if not found & set(entry.split("|"))]

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "expected": self.expected,
            "family": self.family,
            "technique": self.technique,
            "rules": list(self.rules),
            "made_by": self.made_by,
            "pickle_based": self.pickle_based,
        }


@dataclass(frozen=True)
class Spec:
    """A sample and the function that writes it: ``write(path)`` creates exactly ``directory / sample.name``."""

    sample: Sample
    write: Callable[[Path], None] = field(compare=False)


def write_manifest(samples: Iterable[Sample], path: Path) -> None:
    """Write the labels as JSON (sorted by name) so that tools outside this package can read them."""
    rows = sorted((s.to_dict() for s in samples), key=lambda row: str(row["name"]))
    path.write_text(json.dumps({"schema_version": 1, "samples": rows}, indent=1, sort_keys=True) + "\n")


def read_manifest(path: Path) -> list[Sample]:
    """Read labels written by :func:`write_manifest`."""
    data: Mapping[str, list[dict[str, object]]] = json.loads(path.read_text())
    return [
        Sample(
            name=str(row["name"]),
            expected=row["expected"],  # type: ignore[arg-type]
            family=str(row["family"]),
            technique=str(row["technique"]),
            rules=tuple(row["rules"]),  # type: ignore[arg-type]
            made_by=str(row["made_by"]),
            pickle_based=bool(row["pickle_based"]),
        )
        for row in data["samples"]
    ]
