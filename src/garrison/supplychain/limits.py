"""Resource limits of a scan: every bound that keeps hostile input from exhausting memory or time."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from garrison.core.errors import ConfigError

__all__ = ["ScanLimits"]


@dataclass(frozen=True, slots=True)
class ScanLimits:
    """Bounds of one scan. Hitting any of them makes the file incomplete (exit 3), never clean.

    ``max_decompression_ratio`` bounds decompressed size per compressed byte of one member or wrapper;
    ``max_nesting_depth`` how deep archives may nest; ``max_memo_entries`` and ``max_opcodes`` bound one pickle
    stream; ``timeout_s`` the wall time per file given on the command line; ``max_member_bytes`` the decompressed
    size of one member; ``max_members`` the member count of one archive.
    """

    max_decompression_ratio: float = 200.0
    max_nesting_depth: int = 8
    max_memo_entries: int = 1_000_000
    max_opcodes: int = 100_000_000
    timeout_s: float = 120.0
    max_member_bytes: int = 8 * 2**30
    max_members: int = 100_000

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(
                    f"`{f.name}` must be a number > 0, got {value!r}", key=f"scan.limits.{f.name}"
                )

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> ScanLimits:
        """Limits from a ``scan.limits`` config mapping; unknown keys are a :class:`ConfigError`."""
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(
                    f"unknown scan limit {key!r} (known: {', '.join(sorted(known))})",
                    key=f"scan.limits.{key}",
                )
        return cls(**data)
