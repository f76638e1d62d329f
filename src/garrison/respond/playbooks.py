"""Playbooks: "when signal X, then actions Y", declared in garrison.yaml under ``serve.playbooks``.

::

    serve:
      playbooks:
        - name: stop-extraction
          when: probing              # a detector's signal kind, or "any"
          min_severity: medium       # ignore weaker signals
          then: [notify, block]
        - when: drift
          then: [notify]
        - when: adversarial
          then: [notify, quarantine, throttle]
          throttle_rate: 1.0         # rows per second left to the key

Signals (``when``): ``ood`` (out-of-distribution rows), ``adversarial`` (feature squeezing, with ``serve.squeezing``),
``probing`` (extraction or membership-probing query patterns of one key), ``drift`` (the sliding window drifted),
``performance`` (live accuracy from late labels fell below the reference), or ``any``.

Actions (``then``), in the order given:

- ``notify``: an alert to the configured sinks (JSON log, webhook, Prometheus);
- ``block``: refuse every further request of the key (403) until an admin unblocks it;
- ``throttle``: limit the key to ``throttle_rate`` rows per second;
- ``quarantine``: store the offending rows encrypted (``serve.quarantine_key``) for forensics, never in clear;
- ``abstain``: answer the key's requests with 503 "abstained" instead of a prediction until resolved;
- ``fallback``: serve the configured fallback model instead of the primary;
- ``rollback``: serve the newest earlier registered version that passed its audit and verifies its signature.

Every match opens (or extends) an incident in the store with the signal as evidence and each action on its
timeline. Parsing is strict: an unknown signal or action is a :class:`~garrison.core.errors.ConfigError` naming
the playbook and key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from garrison.core.errors import ConfigError

__all__ = ["ACTIONS", "SIGNALS", "Playbook", "parse_playbooks"]

SIGNALS = ("ood", "adversarial", "probing", "drift", "performance", "any")
ACTIONS = ("notify", "block", "throttle", "quarantine", "abstain", "fallback", "rollback")
_SEVERITIES = ("info", "low", "medium", "high", "critical")
_KEYS = ("name", "when", "min_severity", "then", "throttle_rate")


@dataclass(frozen=True)
class Playbook:
    """One rule: on a signal of kind ``when`` at ``min_severity`` or above, run ``then`` in order."""

    name: str
    when: str
    then: tuple[str, ...]
    min_severity: str = "low"
    throttle_rate: float = 1.0

    def matches(self, kind: str, severity: str) -> bool:
        return (self.when in ("any", kind)) and _SEVERITIES.index(severity) >= _SEVERITIES.index(
            self.min_severity
        )


def parse_playbooks(items: Sequence[Mapping[str, Any]] | None, *, path: str | None = None) -> list[Playbook]:
    """Playbooks from the ``serve.playbooks`` list; :class:`ConfigError` naming ``serve.playbooks[i].key``."""
    out = []
    for i, item in enumerate(items or ()):
        where = f"serve.playbooks[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError("must be a mapping with `when` and `then`", path=path, key=where)
        unknown = sorted(set(item) - set(_KEYS))
        if unknown:
            raise ConfigError(f"unknown key `{unknown[0]}` (known: {', '.join(_KEYS)})", path=path, key=where)
        when = item.get("when")
        if when not in SIGNALS:
            raise ConfigError(f"`when` must be one of {', '.join(SIGNALS)}, got {when!r}", path=path,
                              key=f"{where}.when")  # fmt: skip
        then = item.get("then")
        if isinstance(then, str):
            then = [then]
        if not isinstance(then, list) or not then or any(a not in ACTIONS for a in then):
            raise ConfigError(f"`then` must list actions among {', '.join(ACTIONS)}, got {then!r}", path=path,
                              key=f"{where}.then")  # fmt: skip
        severity = item.get("min_severity", "low")
        if severity not in _SEVERITIES:
            raise ConfigError(f"`min_severity` must be one of {', '.join(_SEVERITIES)}, got {severity!r}",
                              path=path, key=f"{where}.min_severity")  # fmt: skip
        rate = item.get("throttle_rate", 1.0)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or rate < 0:
            raise ConfigError(
                f"`throttle_rate` must be >= 0, got {rate!r}", path=path, key=f"{where}.throttle_rate"
            )
        name = str(item.get("name") or f"playbook-{i}-{when}")
        out.append(
            Playbook(name=name, when=when, then=tuple(then), min_severity=severity, throttle_rate=float(rate))
        )
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise ConfigError("playbook names must be unique", path=path, key="serve.playbooks")
    return out
