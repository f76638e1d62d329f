"""Running an experiment on Flower's Simulation Engine: one ``ServerApp`` and one ``ClientApp``.

The ``ClientApp`` answers ``train`` messages with :func:`~garrison.federated.scenario.client_update` (the client's
partition comes from its node config, ``partition-id``, as in a Flower deployment where each SuperNode holds its
own data). The ``ServerApp`` runs every configured strategy in turn on the same connected clients (``Strategy.start``
on the same ``Grid``), evaluating the global model centrally after every round on the held-out test set. One Ray
start-up therefore serves every strategy of an experiment.

:func:`simulate` silences Flower's and Ray's console logging for the duration of the run (and restores it) and
ignores Ray's ``FutureWarning`` about accelerator variables; it never prints.
"""

from __future__ import annotations

import logging
import time
import warnings
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from garrison.core.optional import import_optional
from garrison.federated.config import FLConfig
from garrison.federated.results import RoundRecord, SimulationResult, StrategyRun
from garrison.federated.scenario import Scenario, build_scenario, client_update, patch_trigger
from garrison.federated.training import backdoor_success, evaluate_accuracy, initial_weights

__all__ = ["build_apps", "simulate"]


def build_apps(scenario: Scenario, runs: list[StrategyRun]) -> tuple[Any, Any]:
    """The Flower ``ServerApp`` and ``ClientApp`` of ``scenario``; the server appends one :class:`StrategyRun` per
    strategy to ``runs`` (it runs in the calling process)."""
    app_mod = import_optional("flwr.app", extra="federated")
    clientapp_mod = import_optional("flwr.clientapp", extra="federated")
    serverapp_mod = import_optional("flwr.serverapp", extra="federated")
    from garrison.federated.strategies import PARTITION_KEY, ScreenedStrategy, build_strategy

    c = scenario.config
    client_app = clientapp_mod.ClientApp()

    @client_app.train()
    def _train(msg: Any, context: Any) -> Any:
        pid = int(context.node_config["partition-id"])
        weights = msg.content["arrays"].to_numpy_ndarrays()
        server_round = int(msg.content["config"]["server-round"])
        reply = client_update(scenario, pid, weights, server_round=server_round)
        content = app_mod.RecordDict(
            {
                "arrays": app_mod.ArrayRecord([np.asarray(w) for w in reply.weights]),
                "metrics": app_mod.MetricRecord(
                    {"num-examples": reply.num_examples, "train-loss": reply.loss, PARTITION_KEY: pid}
                ),
            }
        )
        return app_mod.Message(content=content, reply_to=msg)

    server_app = serverapp_mod.ServerApp()
    backdoor = c.attack.kind == "backdoor"

    def evaluate(_round: int, arrays: Any) -> Any:
        w = arrays.to_numpy_ndarrays()
        kw = {"n_classes": scenario.n_classes, "kind": c.model, "hidden": c.hidden}
        metrics = {"accuracy": evaluate_accuracy(w, scenario.x_test, scenario.y_test, **kw)}
        if backdoor:
            metrics["backdoor"] = backdoor_success(
                w, scenario.x_test, scenario.y_test, trigger=patch_trigger, target=c.attack.target, **kw
            )
        return app_mod.MetricRecord(metrics)

    @server_app.main()
    def _main(grid: Any, context: Any) -> None:
        for name in c.strategies:
            strategy = build_strategy(
                name,
                n_clients=c.clients,
                n_malicious=c.malicious,
                trimmed_beta=c.trimmed_beta,
                norm_factor=c.screening.norm_factor,
                z=c.screening.z,
                min_distance=c.screening.min_distance,
                coordinate_z=c.screening.coordinate_z,
                noise_multiplier=c.noise_multiplier,
                clipping_norm=c.clipping_norm,
            )
            start = time.perf_counter()
            init = initial_weights(
                scenario.n_features, scenario.n_classes, kind=c.model, hidden=c.hidden, seed=c.seed
            )
            result = strategy.start(
                grid=grid,
                initial_arrays=app_mod.ArrayRecord(init),
                num_rounds=c.rounds,
                evaluate_fn=evaluate,
            )
            duration = time.perf_counter() - start
            rejected = strategy.rejected if isinstance(strategy, ScreenedStrategy) else {}
            records = []
            for rnd in range(c.rounds + 1):
                m = result.evaluate_metrics_serverapp.get(rnd)
                if m is None:  # a round whose aggregation failed keeps the previous model
                    m = records[-1] if records else None
                    acc, bd = (m.accuracy, m.backdoor) if m is not None else (float("nan"), None)
                else:
                    acc, bd = float(m["accuracy"]), (float(m["backdoor"]) if backdoor else None)
                records.append(RoundRecord(rnd, acc, bd, tuple(rejected.get(rnd, ()))))
            runs.append(
                StrategyRun(name, tuple(records), duration, screened=isinstance(strategy, ScreenedStrategy))
            )

    return server_app, client_app


def simulate(config: FLConfig) -> SimulationResult:
    """Run every strategy of ``config`` on Flower's Simulation Engine (Ray backend) and collect the results."""
    simulation = import_optional("flwr.simulation", extra="federated")
    import_optional("ray", extra="federated")
    start = time.perf_counter()
    scenario = build_scenario(config)
    runs: list[StrategyRun] = []
    server_app, client_app = build_apps(scenario, runs)
    backend_config = {
        "client_resources": {"num_cpus": config.cpus_per_client, "num_gpus": 0.0},
        "init_args": {"logging_level": "ERROR", "log_to_driver": False, "include_dashboard": False},
    }
    loggers = [logging.getLogger(n) for n in ("flwr", "ray")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=r"Tip: In future versions of Ray", category=FutureWarning
            )
            simulation.run_simulation(
                server_app=server_app,
                client_app=client_app,
                num_supernodes=config.clients,
                backend_config=backend_config,
            )
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
    if len(runs) != len(config.strategies):
        raise RuntimeError("the Flower simulation ended before every strategy ran")
    return SimulationResult(
        config=config.to_dict(),
        malicious=scenario.malicious,
        runs=tuple(runs),
        client_sizes=tuple(len(p) for p in scenario.parts),
        duration_s=time.perf_counter() - start,
        versions=_versions(),
    )


def _versions() -> dict[str, str]:
    out = {}
    for name in ("flwr", "ray", "torch"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover
            continue
    return out
