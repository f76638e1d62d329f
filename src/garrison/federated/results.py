"""The outcome of a federated simulation: per strategy and round, test accuracy, backdoor success and which
clients Garrison's screening rejected; JSON-ready and as Markdown tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["SCHEMA_VERSION", "RoundRecord", "SimulationResult", "StrategyRun"]

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RoundRecord:
    """Round ``round`` (0 = the initial model): test accuracy, backdoor success (``None`` without a backdoor),
    the clients (partition ids) screening rejected and, of those, how many were honest."""

    round: int
    accuracy: float
    backdoor: float | None = None
    rejected: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "accuracy": self.accuracy,
            "backdoor": self.backdoor,
            "rejected": list(self.rejected),
        }


@dataclass(frozen=True)
class StrategyRun:
    """One strategy's rounds and its wall time (seconds, including the clients' training)."""

    strategy: str
    rounds: tuple[RoundRecord, ...]
    duration_s: float
    screened: bool = False

    @property
    def final_accuracy(self) -> float:
        return self.rounds[-1].accuracy

    @property
    def final_backdoor(self) -> float | None:
        return self.rounds[-1].backdoor

    def honest_rejection_rate(self, malicious: frozenset[int] | set[int], n_clients: int) -> float | None:
        """Share of honest client updates (over all training rounds) that screening rejected."""
        if not self.screened:
            return None
        rounds = [r for r in self.rounds if r.round > 0]
        honest_total = len(rounds) * (n_clients - len(malicious))
        wrong = sum(1 for r in rounds for pid in r.rejected if pid not in malicious)
        return wrong / honest_total if honest_total else 0.0

    def malicious_rejection_rate(self, malicious: frozenset[int] | set[int]) -> float | None:
        if not self.screened or not malicious:
            return None
        rounds = [r for r in self.rounds if r.round > 0]
        caught = sum(1 for r in rounds for pid in r.rejected if pid in malicious)
        return caught / (len(rounds) * len(malicious))

    def to_dict(self, malicious: frozenset[int], n_clients: int) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "final_accuracy": self.final_accuracy,
            "final_backdoor": self.final_backdoor,
            "honest_rejection_rate": self.honest_rejection_rate(malicious, n_clients),
            "malicious_rejection_rate": self.malicious_rejection_rate(malicious),
            "duration_s": round(self.duration_s, 3),
            "rounds": [r.to_dict() for r in self.rounds],
        }


@dataclass(frozen=True)
class SimulationResult:
    """Every strategy's run on the same clients, data split and attack."""

    config: dict[str, Any]
    malicious: frozenset[int]
    runs: tuple[StrategyRun, ...]
    client_sizes: tuple[int, ...]
    duration_s: float
    backend: str = "flower-simulation"
    versions: dict[str, str] = field(default_factory=dict)

    def run(self, strategy: str) -> StrategyRun:
        for r in self.runs:
            if r.strategy == strategy:
                return r
        raise KeyError(strategy)

    def to_dict(self) -> dict[str, Any]:
        n = int(self.config["clients"])
        return {
            "schema_version": SCHEMA_VERSION,
            "config": self.config,
            "malicious": sorted(self.malicious),
            "client_sizes": list(self.client_sizes),
            "backend": self.backend,
            "versions": dict(sorted(self.versions.items())),
            "duration_s": round(self.duration_s, 3),
            "strategies": [r.to_dict(self.malicious, n) for r in self.runs],
        }

    def to_markdown(self) -> str:
        """Two tables: the final figures per strategy, and the accuracy per round."""
        c = self.config
        n = int(c["clients"])
        attack = c["attack"]["kind"]
        lines = [
            "# Federated learning simulation",
            "",
            f"{n} clients ({c['partition']}{', α = ' + format(c['alpha'], 'g') if c['partition'] == 'dirichlet' else ''}), "
            f"{len(self.malicious)} malicious (attack: {attack}), {c['rounds']} rounds, seed {c['seed']}.",
            "",
            "| strategy | final accuracy | backdoor success | honest rejected | malicious rejected | time (s) |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]

        def pct(v: float | None) -> str:
            return "n/a" if v is None else f"{100 * v:.1f}%"

        for r in self.runs:
            lines.append(
                f"| {r.strategy} | {pct(r.final_accuracy)} | {pct(r.final_backdoor)} | "
                f"{pct(r.honest_rejection_rate(self.malicious, n))} | {pct(r.malicious_rejection_rate(self.malicious))} | "
                f"{r.duration_s:.1f} |"
            )
        rounds = [rec.round for rec in self.runs[0].rounds]
        lines += [
            "",
            "Test accuracy per round:",
            "",
            "| strategy | " + " | ".join(str(k) for k in rounds) + " |",
        ]
        lines.append("| --- |" + " ---: |" * len(rounds))
        for r in self.runs:
            lines.append(
                f"| {r.strategy} | " + " | ".join(f"{100 * rec.accuracy:.1f}" for rec in r.rounds) + " |"
            )
        screened = [r for r in self.runs if r.screened]
        if screened:
            lines += ["", "Clients rejected by screening (partition ids; malicious: "
                      f"{', '.join(map(str, sorted(self.malicious))) or 'none'}):", ""]  # fmt: skip
            for r in screened:
                per_round = "; ".join(
                    f"r{rec.round}: {','.join(map(str, rec.rejected)) or '-'}"
                    for rec in r.rounds
                    if rec.round > 0
                )
                lines.append(f"- {r.strategy}: {per_round}")
        return "\n".join(lines) + "\n"
