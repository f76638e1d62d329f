"""Several attacks as one: each sample keeps its worst case (AutoAttack's rule — the next attack runs only on
samples every earlier attack failed on)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from garrison.adapters.base import Classifier, predict
from garrison.robustness.attacks.apgd import APGD
from garrison.robustness.attacks.base import Attack, check_inputs
from garrison.robustness.attacks.fab import FAB
from garrison.robustness.attacks.hopskipjump import HopSkipJump
from garrison.robustness.attacks.square import Square
from garrison.robustness.result import AttackResult
from garrison.robustness.threat import ThreatModel

__all__ = ["Ensemble", "default_ensemble"]


class Ensemble:
    """Runs ``attacks`` in order on the still-robust samples; a sample counts as broken if any attack broke it."""

    def __init__(self, attacks: Sequence[Attack], *, name: str = "ensemble") -> None:
        if not attacks:
            raise ValueError("`attacks` must hold at least one attack")
        self.attacks = tuple(attacks)
        self.name = name

    def run(
        self,
        model: Classifier,
        x: np.ndarray,
        y: np.ndarray,
        threat: ThreatModel,
        *,
        seed: int = 0,
        deadline: float | None = None,
    ) -> AttackResult:
        """The worst case per sample over all attacks."""
        return self.run_each(model, x, y, threat, seed=seed, deadline=deadline)[0]

    def run_each(
        self,
        model: Classifier,
        x: np.ndarray,
        y: np.ndarray,
        threat: ThreatModel,
        *,
        seed: int = 0,
        deadline: float | None = None,
    ) -> tuple[AttackResult, tuple[AttackResult, ...]]:
        """The combined result and each attack's own (on the samples it was given)."""
        started = time.monotonic()
        x, y = check_inputs(model, x, y)
        x_adv = x.copy()
        success = predict(model, x) != y if len(x) else np.zeros(0, dtype=bool)
        queries = 1
        notes: list[str] = []
        each: list[AttackResult] = []
        for attack in self.attacks:
            todo = np.flatnonzero(~success)
            if len(todo) == 0:
                break
            if deadline is not None and time.monotonic() > deadline:
                notes.append(f"deadline reached before {attack.name}")
                break
            result = attack.run(model, x[todo], y[todo], threat, seed=seed, deadline=deadline)
            each.append(result)
            broken = todo[result.success]
            x_adv[broken] = result.x_adv[result.success]
            success[broken] = True
            queries += result.queries
            notes.append(f"{attack.name}: fooled {int(result.success.sum())} of {len(todo)}")
            notes.extend(f"{attack.name}: {note}" for note in result.notes)
        combined = AttackResult(
            name=self.name,
            x_adv=x_adv,
            success=success,
            queries=queries,
            elapsed_s=time.monotonic() - started,
            loss="+".join(sorted({r.loss for r in each})) or "none",
            notes=tuple(notes),
        )
        return combined, tuple(each)


def default_ensemble(
    model: Classifier, n_classes: int, *, steps: int = 100, queries: int = 5000, batch_size: int = 256
) -> Ensemble:
    """The default evaluation (standard AutoAttack's members): APGD-CE, APGD-T (targeted DLR), FAB-T and Square
    on white-box models (those with a ``torch_module``); Square and HopSkipJump on black-box ones."""
    if getattr(model, "torch_module", None) is not None:
        targets = max(1, min(9, n_classes - 1))
        return Ensemble(
            [
                APGD(loss="ce", steps=steps, batch_size=batch_size),
                APGD(loss="dlr", targeted=True, steps=steps, n_target_classes=targets, batch_size=batch_size),
                FAB(targeted=True, steps=steps, n_target_classes=targets, batch_size=batch_size),
                Square(queries=queries, batch_size=batch_size),
            ],
            name="default-ensemble",
        )
    return Ensemble([Square(queries=queries), HopSkipJump(max_queries=queries)], name="default-ensemble")
