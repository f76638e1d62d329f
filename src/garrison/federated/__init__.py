"""Federated learning that survives malicious clients, on Flower's Simulation Engine.

Partitioning (IID, Dirichlet label skew), malicious-client attacks (sign flip, scaling, label flip, ALIE, IPM,
min-max, constrain-and-scale backdoor), Garrison's screening of updates (norm bounding and similarity outlier
rejection) as a wrapper around any Flower strategy, and :func:`simulate`, which runs an experiment's strategies on
Flower's ``run_simulation`` with a ``ServerApp`` and a ``ClientApp``. Flower (``flwr[simulation]``) and torch are
imported only when a simulation runs; :class:`ScreenedStrategy` and :func:`build_strategy` import Flower on first use.
"""

from __future__ import annotations

from typing import Any

from garrison.federated.attacks import (
    ATTACKS,
    alie,
    alie_z,
    benign_estimate,
    ipm,
    min_max,
    scaling,
    sign_flip,
)
from garrison.federated.config import AttackConfig, FLConfig, ScreeningConfig, load_fl_config, parse_fl_config
from garrison.federated.figures import accuracy_svg, backdoor_svg
from garrison.federated.partition import dirichlet_partition, iid_partition, label_skew
from garrison.federated.results import RoundRecord, SimulationResult, StrategyRun
from garrison.federated.scenario import ClientReply, Scenario, build_scenario, client_update, patch_trigger
from garrison.federated.screening import ScreeningResult, screen_updates
from garrison.federated.simulation import simulate

__all__ = [
    "ATTACKS",
    "AttackConfig",
    "ClientReply",
    "FLConfig",
    "RoundRecord",
    "Scenario",
    "ScreenedStrategy",
    "ScreeningConfig",
    "ScreeningResult",
    "SimulationResult",
    "StrategyRun",
    "accuracy_svg",
    "alie",
    "alie_z",
    "backdoor_svg",
    "benign_estimate",
    "build_scenario",
    "build_strategy",
    "client_update",
    "dirichlet_partition",
    "iid_partition",
    "ipm",
    "label_skew",
    "load_fl_config",
    "min_max",
    "parse_fl_config",
    "patch_trigger",
    "scaling",
    "screen_updates",
    "sign_flip",
    "simulate",
]


def __getattr__(name: str) -> Any:  # Flower is heavy: import it only when its strategies are asked for
    if name in ("ScreenedStrategy", "build_strategy"):
        from garrison.federated import strategies

        return getattr(strategies, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
