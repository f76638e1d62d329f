"""Flower aggregation strategies by name, and Garrison's screening wrapper around any of them.

Garrison uses Flower's *Message-API* strategies (``flwr.serverapp.strategy``, Flower ≥ 1.21), not the legacy
``flwr.server.strategy`` ones: they offer every rule this module names (FedAvg, FedMedian, FedTrimmedAvg, Krum,
MultiKrum, Bulyan and the server-side DP wrappers), they run under ``ServerApp``/``ClientApp`` with a ``Grid`` (the
same code a real deployment runs), and the legacy ones are deprecated.

:class:`ScreenedStrategy` follows the pattern of Flower's DP wrappers: a ``Strategy`` that holds an inner one,
delegates configuration and evaluation, and in ``aggregate_train`` rewrites the replies (clipped updates, rejected
clients dropped, see :mod:`garrison.federated.screening`) before the inner strategy aggregates them. It records
the rejected clients of every round in :attr:`ScreenedStrategy.rejected`.

Names: a base (``fedavg``, ``fedmedian``, ``fedtrimmedavg``, ``krum``, ``multikrum``, ``bulyan``) with wrappers in
front, outermost first: ``screened:multikrum``, ``dp-fixed:fedavg``, ``screened:dp-fixed:fedavg``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from garrison.core.optional import import_optional
from garrison.federated.screening import ScreeningResult, screen_updates

_strategy = import_optional("flwr.serverapp.strategy", extra="federated")
_app = import_optional("flwr.app", extra="federated")

__all__ = ["ScreenedStrategy", "build_strategy"]

PARTITION_KEY = "partition-id"


class ScreenedStrategy(_strategy.Strategy):  # type: ignore[misc,name-defined]
    """Screen client updates (norm bounding, similarity outlier rejection), then let ``strategy`` aggregate."""

    def __init__(
        self,
        strategy: Any,
        *,
        norm_factor: float = 1.5,
        z: float = 4.0,
        min_distance: float = 0.1,
        coordinate_z: float | None = 4.0,
    ) -> None:
        super().__init__()
        self.strategy = strategy
        self.norm_factor = norm_factor
        self.z = z
        self.min_distance = min_distance
        self.coordinate_z = coordinate_z
        self.current_arrays: Any = None
        self.rejected: dict[int, list[int]] = {}
        self.screenings: dict[int, ScreeningResult] = {}

    def __repr__(self) -> str:
        return f"ScreenedStrategy({self.strategy!r})"

    def summary(self) -> None:
        self.strategy.summary()

    def configure_train(self, server_round: int, arrays: Any, config: Any, grid: Any) -> Iterable[Any]:
        self.current_arrays = arrays
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round: int, replies: Iterable[Any]) -> tuple[Any, Any]:
        replies = [r for r in replies if not r.has_error()]
        if not replies or self.current_arrays is None:
            return self.strategy.aggregate_train(server_round, replies)
        current = self.current_arrays.to_numpy_ndarrays()
        g = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in current])
        names, updates = [], []
        for reply in replies:
            (name, record), *_ = reply.content.array_records.items()
            names.append((name, list(record.keys())))
            flat = np.concatenate(
                [np.asarray(a, dtype=np.float64).ravel() for a in record.to_numpy_ndarrays()]
            )
            updates.append(flat - g)
        result = screen_updates(
            np.stack(updates),
            norm_factor=self.norm_factor,
            z=self.z,
            min_distance=self.min_distance,
            coordinate_z=self.coordinate_z,
        )
        self.screenings[server_round] = result
        self.rejected[server_round] = sorted(_partition_of(replies[i], i) for i in result.rejected)
        kept = []
        for i in result.kept:
            name, keys = names[i]
            new, start = [], 0
            for a in current:
                n = int(np.prod(a.shape))
                new.append(
                    (g[start : start + n] + result.updates[i, start : start + n])
                    .reshape(a.shape)
                    .astype(a.dtype)
                )
                start += n
            replies[i].content[name] = _app.ArrayRecord(
                dict(zip(keys, (_app.Array(v) for v in new), strict=True))
            )
            kept.append(replies[i])
        return self.strategy.aggregate_train(server_round, kept)

    def configure_evaluate(self, server_round: int, arrays: Any, config: Any, grid: Any) -> Iterable[Any]:
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Any]) -> Any:
        return self.strategy.aggregate_evaluate(server_round, replies)


def _partition_of(reply: Any, default: int) -> int:
    for record in reply.content.metric_records.values():
        if PARTITION_KEY in record:
            return int(record[PARTITION_KEY])
    return int(reply.metadata.src_node_id) if default < 0 else default


def _train_metrics(contents: list[Any], weighted_by_key: str) -> Any:
    """The weighted mean training loss (the default would average partition ids too)."""
    total, loss = 0.0, 0.0
    for content in contents:
        record = next(iter(content.metric_records.values()))
        w = float(record[weighted_by_key])
        total += w
        loss += w * float(record.get("train-loss", 0.0))
    return _app.MetricRecord({"train-loss": loss / total if total else 0.0})


def build_strategy(
    name: str,
    *,
    n_clients: int,
    n_malicious: int,
    trimmed_beta: float = 0.2,
    norm_factor: float = 1.5,
    z: float = 4.0,
    min_distance: float = 0.1,
    coordinate_z: float | None = 4.0,
    noise_multiplier: float = 0.1,
    clipping_norm: float = 1.0,
) -> Any:
    """The Flower strategy called ``name`` for ``n_clients`` clients of which ``n_malicious`` are assumed malicious
    (the ``f`` of Krum, MultiKrum and Bulyan). Every client trains every round; evaluation is centralised."""
    *wrappers, base = name.split(":")
    common: dict[str, Any] = {
        "fraction_train": 1.0,
        "fraction_evaluate": 0.0,
        "min_train_nodes": n_clients,
        "min_available_nodes": n_clients,
        "train_metrics_aggr_fn": _train_metrics,
    }
    f = n_malicious
    strategy: Any
    if base == "fedavg":
        strategy = _strategy.FedAvg(**common)
    elif base == "fedmedian":
        strategy = _strategy.FedMedian(**common)
    elif base == "fedtrimmedavg":
        strategy = _strategy.FedTrimmedAvg(beta=trimmed_beta, **common)
    elif base == "krum":
        strategy = _strategy.Krum(num_malicious_nodes=f, **common)
    elif base == "multikrum":
        strategy = _strategy.MultiKrum(num_malicious_nodes=f, num_nodes_to_select=n_clients - f, **common)
    elif base == "bulyan":
        if n_clients < 4 * f + 3:
            raise ValueError(f"bulyan needs n_clients >= 4 * n_malicious + 3 = {4 * f + 3}, got {n_clients}")
        strategy = _strategy.Bulyan(num_malicious_nodes=f, **common)
    else:
        raise ValueError(f"unknown strategy {base!r}")
    for wrapper in reversed(wrappers):
        if wrapper == "screened":
            strategy = ScreenedStrategy(
                strategy, norm_factor=norm_factor, z=z, min_distance=min_distance, coordinate_z=coordinate_z
            )
        elif wrapper == "dp-fixed":
            strategy = _strategy.DifferentialPrivacyServerSideFixedClipping(
                strategy,
                noise_multiplier=noise_multiplier,
                clipping_norm=clipping_norm,
                num_sampled_clients=n_clients,
            )
        elif wrapper == "dp-adaptive":
            strategy = _strategy.DifferentialPrivacyServerSideAdaptiveClipping(
                strategy,
                noise_multiplier=noise_multiplier,
                num_sampled_clients=n_clients,
                initial_clipping_norm=clipping_norm,
            )
        else:
            raise ValueError(f"unknown wrapper {wrapper!r}")
    return strategy
