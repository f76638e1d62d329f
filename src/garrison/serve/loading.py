"""Build the guarded service from garrison.yaml: the model (through the registry's checks), its schema and
reference data, the store's keys and audit log, detectors, drift monitor, alerts and playbooks.

``build_service(cfg)`` returns a :class:`ServiceBundle`: the :class:`~garrison.serve.app.GuardedService`, its
FastAPI app, and ``close()`` for the store and alert threads. The reference is ``data.train`` (else ``data.test``):
the validator's schema, the detectors' calibration, the drift reference and the explainer's background.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from garrison.core.errors import ConfigError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from garrison.core.config import GarrisonConfig
    from garrison.serve.app import GuardedService

__all__ = ["ServiceBundle", "build_service"]

# probing kinds of garrison.monitor.probing and how severe each is as a playbook signal
_PROBING_SEVERITY = {"volume": "medium", "near_duplicates": "high", "boundary": "high", "ood_share": "medium"}


@dataclass
class ServiceBundle:
    """A built service: ``service``, its ``app``, and what ``close()`` releases."""

    service: GuardedService
    app: FastAPI
    closers: list[Callable[[], None]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def close(self) -> None:
        for close in reversed(self.closers):
            close()

    def run(self, *, host: str | None = None, port: int | None = None) -> None:
        """Serve on uvicorn (one worker) until interrupted; ``host``/``port`` default to the settings.

        Everything built so far (the model, the reference, the libraries) lives as long as the process, so it is
        moved out of the garbage collector's reach first (``gc.freeze``): otherwise each full collection walks
        those few hundred thousand objects, a 200 ms stall of every request in flight, several times a minute
        under load.
        """
        import gc

        import uvicorn

        settings = self.service.settings
        gc.collect()
        gc.freeze()
        uvicorn.run(self.app, host=host or settings.host, port=settings.port if port is None else port,
                    log_level="warning", access_log=False, ws="none")  # fmt: skip


def build_service(cfg: GarrisonConfig, *, env: Mapping[str, str] | None = None, store_url: str | None = None
                  ) -> ServiceBundle:  # fmt: skip
    """The service of ``cfg`` (see the module docstring). ``store_url`` overrides ``serve.store``; without either
    the project's SQLite store ``.garrison/garrison.db`` beside the config is used."""
    from garrison.adapters.loading import load_classifier
    from garrison.data import load_datasets
    from garrison.monitor.alerts import AlertRouter, JsonLogSink, WebhookSink
    from garrison.registry import ModelRegistry, RegistryRefusal
    from garrison.respond import IncidentResponder, parse_playbooks
    from garrison.serve.actions import ServiceActions
    from garrison.serve.app import GuardedService, create_app
    from garrison.serve.settings import ServeSettings
    from garrison.store import AuditJournal, AuditLog, KeyRing, Store, default_url

    raw: dict[str, Any] = dict(cfg.raw.get("serve") or {})
    settings = ServeSettings.from_mapping(raw)
    if cfg.model is None:
        raise ConfigError("`garrison serve` needs a `model` section", path=cfg.source, key="model")
    sources = {r: s for r, s in (("train", cfg.data.train), ("test", cfg.data.test)) if s is not None}
    if not sources:
        raise ConfigError("`garrison serve` needs `data.train` or `data.test` (the schema and reference)",
                          path=cfg.source, key="data")  # fmt: skip
    datasets = load_datasets(sources, base_dir=cfg.base_dir, overrides=cfg.data.features)
    reference = datasets.get("train") or datasets["test"]
    store = Store.open(
        store_url or raw.get("store") or default_url(cfg.base_dir), durable=bool(raw.get("fsync"))
    )
    bundle_closers: list[Callable[[], None]] = [store.close]
    notes: list[str] = []
    try:
        signing_key = cfg.resolve(cfg.scan.require_signature) if cfg.scan.require_signature else None
        attestation = raw.get("require_attestation") or {}
        attestation_key = cfg.resolve(attestation["public_key"]) if attestation.get("public_key") else None
        registry = ModelRegistry(store, public_key=signing_key, require_audit=raw.get("require_audit", True),
                                 attestation_key=attestation_key)  # fmt: skip
        model_cfg = cfg.model
        version = ""
        serving = registry.serving(model_cfg.name)
        if serving is not None:
            problems = registry.problems(serving)
            if problems:
                raise RegistryRefusal(model_cfg.name, serving.version, problems)
            model_cfg, version = replace(model_cfg, path=serving.uri), serving.version
        else:
            notes.append(f"model {model_cfg.name!r} has no registered serving version: serving {model_cfg.path} "
                         "without registry checks")  # fmt: skip
            if attestation_key is not None:  # still required of an unregistered model
                _require_attestation(cfg, model_cfg, attestation, attestation_key)

        def load(config: Any) -> Any:
            return load_classifier(config, base_dir=cfg.base_dir, sample_shape=tuple(reference.x.shape[1:]),
                                   codec=reference.codec, feature_names=reference.schema.names(),
                                   trusted_types=cfg.scan.allowlist)  # fmt: skip

        model = load(model_cfg)
        keys = KeyRing.from_store(store)
        audit_log = AuditLog(store, worker=settings.worker)
        bundle_closers.append(audit_log.close)
        journal_dir = cfg.resolve(raw.get("journal") or ".garrison/journal")
        journal = AuditJournal.open(audit_log, journal_dir, fsync=bool(raw.get("fsync")))
        bundle_closers.append(journal.close)
        service = GuardedService(model=model, schema=reference.schema, keys=keys, settings=settings,
                                 audit_log=journal, model_version=version, store=store,
                                 records=reference.records is not None)  # fmt: skip
        journal.on_error = lambda exc: service.metrics.rejected.labels("journal_move").inc()
        x_ref = np.asarray(reference.x, dtype=np.float64)
        if raw.get("explain", True):
            service.explainer = _explainer(model, x_ref, notes)

        alerts_cfg = raw.get("alerts") or {}
        sinks: list[Any] = []
        if alerts_cfg.get("log"):
            sinks.append(JsonLogSink(cfg.resolve(alerts_cfg["log"])))
        if alerts_cfg.get("webhook"):
            webhook = WebhookSink(alerts_cfg["webhook"])
            sinks.append(webhook)
            bundle_closers.append(webhook.close)
        router = AlertRouter(sinks, min_interval_s=float(alerts_cfg.get("min_interval_s", 60.0)),
                             on_send=lambda a: service.metrics.alerts.labels(a.kind).inc())  # fmt: skip

        def fallback() -> tuple[Any, str]:
            if not raw.get("fallback_model"):
                raise RuntimeError("no fallback model is configured (serve.fallback_model)")
            return load(replace(cfg.model, path=raw["fallback_model"])), "fallback"  # type: ignore[arg-type]

        def rollback() -> tuple[Any, str]:
            target = registry.rollback_target(cfg.model.name)  # type: ignore[union-attr]
            if target is None:
                raise RuntimeError("no earlier version passes its audit and signature checks")
            loaded = load(replace(cfg.model, path=target.uri))  # type: ignore[arg-type]
            store.set_serving(target.model_name, target.version)
            return loaded, target.version

        actions = ServiceActions(service, alerts=router, rollback=rollback, fallback=fallback,
                                 quarantine_dir=cfg.resolve(raw["quarantine_dir"]) if raw.get("quarantine_dir") else None,
                                 quarantine_key=_quarantine_key(raw, cfg, env))  # fmt: skip
        responder = IncidentResponder(parse_playbooks(raw.get("playbooks"), path=cfg.source), actions, store=store,
                                      model_name=cfg.model.name)  # fmt: skip
        service.hooks.extend(_detector_hooks(service, x_ref, responder, settings, cfg.seed))
        service.on_signal = responder.handle
        labelled = datasets.get("test") or reference
        if labelled.y is not None:  # the reference accuracy late labels are compared with
            from garrison.data.labels import encode_labels

            y = encode_labels(np.asarray(labelled.y), model.classes, int(model.n_classes))
            predicted = np.asarray(model.predict_proba(np.asarray(labelled.x))).argmax(axis=1)
            service.feedback.baseline = float(np.mean(predicted == y))
        app = create_app(service)
        bundle_closers.append(service.close)
        bundle_closers.append(_every(float(raw.get("keys_reload_s", 30.0)), keys.reload, "garrison-keys"))
        if raw.get("head_key"):
            bundle_closers.append(_export_heads(journal, cfg.resolve(raw["head_key"]),
                                                cfg.resolve(raw.get("heads_file") or ".garrison/heads.jsonl"),
                                                float(raw.get("head_export_s", 60.0)), router))  # fmt: skip
    except BaseException:
        for close in reversed(bundle_closers):
            close()
        raise
    return ServiceBundle(service, app, bundle_closers, notes)


def _require_attestation(
    cfg: GarrisonConfig, model_cfg: Any, attestation: Mapping[str, Any], key: Path
) -> None:
    """Refuse to serve the model file unless its attestation (``serve.require_attestation.path``, default
    ``<model>.intoto.jsonl``) verifies against ``key`` and vouches for a passing audit of these very bytes."""
    from garrison.registry import RegistryRefusal
    from garrison.report.attestation import attestation_problems, default_attestation_path

    if model_cfg.path is None:
        raise RegistryRefusal(
            model_cfg.name, "unregistered", ["attestation: the model has no file to attest"]
        )
    model_file = cfg.resolve(model_cfg.path)
    path = (
        cfg.resolve(attestation["path"]) if attestation.get("path") else default_attestation_path(model_file)
    )
    problems = attestation_problems(model_file, attestation=path, public_key=key)
    if problems:
        raise RegistryRefusal(model_cfg.name, "unregistered", problems)


def _every(seconds: float, work: Callable[[], None], name: str) -> Callable[[], None]:
    """Run ``work`` every ``seconds`` in a daemon thread (a failure is retried next time); returns its stop."""
    import contextlib
    import threading

    stop = threading.Event()

    def run() -> None:
        while not stop.wait(seconds):
            # e.g. the store briefly unavailable: keep the previous keys, try again next time
            with contextlib.suppress(Exception):
                work()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()

    def close() -> None:
        stop.set()
        thread.join(5)

    return close


def _export_heads(
    log: Any, key_path: Path, heads_file: Path, every_s: float, router: Any
) -> Callable[[], None]:
    """Sign the chain head every ``every_s`` seconds (and at shutdown) and append it to ``heads_file``: with the
    heads kept away from the database, `garrison log verify --heads` detects a truncated or rewritten log. Returns
    the function that stops the exporter."""
    import json
    import threading

    from garrison.monitor.alerts import Alert
    from garrison.store import load_private_key

    key = load_private_key(key_path.read_bytes())
    heads_file.parent.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()

    def sink(head: dict[str, Any]) -> None:
        with heads_file.open("a", encoding="utf-8") as f:
            f.write(json.dumps(head, sort_keys=True) + "\n")
        router.emit(Alert("audit-head", "info", f"audit-log head {head.get('worker')}#{head.get('seq')}",
                          subject=str(head.get("worker")), time=time.time(), details=head))  # fmt: skip

    def export() -> None:
        if log.head().seq > 0:
            log.export_head(sink, private_key=key)

    def run() -> None:
        while not stop.wait(every_s):
            export()

    thread = threading.Thread(target=run, name="garrison-heads", daemon=True)
    thread.start()

    def close() -> None:
        stop.set()
        thread.join(5)
        export()

    return close


def _explainer(model: Any, x_ref: np.ndarray, notes: list[str]) -> Any:
    from garrison.core.errors import MissingDependencyError
    from garrison.explain import Explainer

    rng = np.random.default_rng(0)
    background = x_ref[rng.choice(len(x_ref), size=min(50, len(x_ref)), replace=False)]
    try:
        explainer = Explainer(model, background=background, budget_s=1.0, max_background=20)
        explainer.explain(x_ref[:1])  # build the backend now, not on the first request
    except MissingDependencyError as exc:
        notes.append(f"/v1/explain is off: {exc}")
        return None
    return explainer


def _quarantine_key(raw: Mapping[str, Any], cfg: GarrisonConfig, env: Mapping[str, str] | None) -> Any:
    path = raw.get("quarantine_key")
    if not path:
        return None
    from garrison.protect.keys import KeyEncryptionKey

    return KeyEncryptionKey.from_file(cfg.resolve(path))


def _detector_hooks(service: GuardedService, x_ref: np.ndarray, responder: Any, settings: Any, seed: int
                    ) -> list[Callable[[str, np.ndarray, np.ndarray, float], None]]:  # fmt: skip
    """Per-batch hooks: OOD rows, low margins, query patterns per key, the sliding drift window; each signal
    goes to the responder (playbooks) and the detection counters."""
    from garrison.monitor.detectors import MarginDetector, OODDetector
    from garrison.monitor.probing import QueryMonitor
    from garrison.respond import Signal

    metrics = service.metrics
    flat = x_ref.reshape(len(x_ref), -1)
    probs_ref = np.asarray(service.model.predict_proba(x_ref), dtype=np.float64)
    ood = OODDetector(seed=seed).fit(flat)
    # the query monitor keeps its per-key history across a model swap (an attacker must not reset it by tipping
    # the service into its fallback); its boundary calibration stays the first model's
    queries = QueryMonitor(ood=ood, seed=seed).fit(flat, probs_ref)
    fitted: dict[str, Any] = {}

    def refit(probs: np.ndarray) -> None:
        """What depends on the served model: its margins on the reference, and squeezing through it."""
        fitted["low_margin"] = MarginDetector().fit(probs)
        fitted["squeezing"] = _squeezing(service, x_ref) if settings.squeezing else None

    refit(probs_ref)
    service.model_listeners.append(
        lambda: refit(np.asarray(service.model.predict_proba(x_ref), dtype=np.float64))
    )
    counters = {name: metrics.detections.labels(name) for name in ("ood", "low_margin", "squeezing",
                                                                    *_PROBING_SEVERITY)}  # fmt: skip

    def detectors(key: str, x: np.ndarray, probs: np.ndarray, now: float) -> None:
        low_margin, squeezing = fitted["low_margin"], fitted["squeezing"]
        rows = x.reshape(len(x), -1)
        flagged_ood = ood.flag(rows)
        n_ood = int(flagged_ood.sum())
        if n_ood:
            counters["ood"].inc(n_ood)
        n_low = int(low_margin.flag(probs).sum())
        if n_low:
            counters["low_margin"].inc(n_low)
        for signal in queries.observe(key, rows, probs, now):
            counters[signal.kind].inc()
            responder.handle(
                Signal("probing", _PROBING_SEVERITY.get(signal.kind, "medium"), key,
                       f"key {key}: {signal.kind.replace('_', ' ')} {signal.score:.3g} ≥ {signal.threshold:.3g}",
                       details=signal.to_dict()),
                rows,
            )  # fmt: skip
        if squeezing is not None:
            flagged = squeezing.flag(x, probs)
            n_adv = int(flagged.sum())
            if n_adv:
                counters["squeezing"].inc(n_adv)
                responder.handle(Signal("adversarial", "medium", key, f"key {key}: {n_adv} rows change their "
                                        "prediction under feature squeezing", details={"rows": n_adv}),
                                 rows[flagged])  # fmt: skip
        if n_ood and n_ood == len(rows):
            responder.handle(Signal("ood", "low", key, f"key {key}: {n_ood} out-of-distribution rows",
                                    details={"rows": n_ood}), rows[flagged_ood])  # fmt: skip

    hooks = [detectors, _drift_hook(service, flat, responder, settings, metrics, probs_ref=probs_ref)]
    if settings.strip_sample > 0 and x_ref.ndim > 2:
        hooks.append(_strip_hook(service, x_ref, responder, settings, metrics, seed))
    return hooks


_EXPLAIN_ROWS = 200  # rows explained on each side of an explanation-drift check


def _reference_attributions(service: GuardedService, flat: np.ndarray, rng: np.random.Generator) -> Any:
    """Attributions of a sample of the reference, when the explainer is exact and cheap (SHAP tree or linear,
    Captum): the baseline explanation drift is tested against. None for sampled (permutation) explainers."""
    explainer = service.explainer
    if explainer is None or explainer.route == "permutation":
        return None
    rows = flat[rng.choice(len(flat), size=min(_EXPLAIN_ROWS, len(flat)), replace=False)]
    return explainer.explain(rows.reshape(len(rows), *service.schema.sample_shape)).values


def _explanation_drift(service: GuardedService, window: Any, reference: np.ndarray, responder: Any,
                       rng: np.random.Generator) -> None:  # fmt: skip
    """Explain a sample of the drift window's rows and test their attributions against the reference's."""
    from garrison.explain import attribution_drift
    from garrison.respond import Signal

    rows = window.rows()
    if len(rows) < 2 or window.reference.categorical_names:  # the window keeps categories as strings
        return
    rows = rows[rng.choice(len(rows), size=min(_EXPLAIN_ROWS, len(rows)), replace=False)]
    current = service.explainer.explain(rows.reshape(len(rows), *service.schema.sample_shape)).values
    result = attribution_drift(reference, current, feature_names=list(service.schema.names()))
    drifted = [n for n, flag in zip(result.feature_names, result.drifted, strict=True) if flag]
    if drifted:
        responder.handle(Signal("drift", "medium", "model", f"explanations drifted for {len(drifted)} features: "
                                f"{', '.join(drifted[:5])}", details={"explanations": drifted,
                                                                      "rank_correlation": result.rank_correlation}))  # fmt: skip


def _strip_hook(service: GuardedService, x_ref: np.ndarray, responder: Any, settings: Any, metrics: Any, seed: int
                ) -> Callable[[str, np.ndarray, np.ndarray, float], None]:  # fmt: skip
    """STRIP (backdoor triggers in image inputs) on a sample of the rows: ~20 forward passes per row, so only
    ``strip_sample`` of them, in the background thread."""
    from collections import OrderedDict

    from garrison.poisoning.strip import STRIP
    from garrison.respond import Signal

    rng = np.random.default_rng(seed)
    sample = x_ref[rng.choice(len(x_ref), size=min(300, len(x_ref)), replace=False)]
    fitted = {"strip": STRIP(service.model, frr=0.01, seed=seed).fit(sample)}
    service.model_listeners.append(
        lambda: fitted.update(strip=STRIP(service.model, frr=0.01, seed=seed).fit(sample))
    )
    counter = metrics.detections.labels("strip")
    seen: OrderedDict[str, list[int]] = OrderedDict()  # key -> [sampled, flagged], bounded

    def strip_hook(key: str, x: np.ndarray, probs: np.ndarray, now: float) -> None:
        picked = rng.random(len(x)) < settings.strip_sample
        if not picked.any():
            return
        flagged = fitted["strip"].detect(x[picked])
        n = int(flagged.sum())
        counts = seen.pop(key, [0, 0])
        counts[0] += int(picked.sum())
        counts[1] += n
        seen[key] = counts
        if len(seen) > 4096:
            seen.popitem(last=False)
        if n:
            counter.inc(n)
        # one clean input in a hundred is flagged (STRIP's false-rejection rate): a key is suspect at 3 flagged
        # inputs making 20 % of those sampled
        if n and counts[1] >= 3 and counts[1] >= 0.2 * counts[0]:
            responder.handle(Signal("adversarial", "high", key, f"key {key}: {counts[1]} of {counts[0]} sampled "
                                    "inputs look triggered (STRIP: low prediction entropy under superimposition)",
                                    details={"rows": counts[1], "sampled": counts[0]}), x[picked][flagged])  # fmt: skip

    return strip_hook


def _squeezing(service: GuardedService, x_ref: np.ndarray) -> Any:
    """Feature squeezing fitted on reference rows: bit-depth reduction for images (inputs of more than one
    dimension), rounding to the reference's recorded precision for tabular rows."""
    from garrison.monitor.squeezing import BitDepth, FeatureSqueezing, Rounding

    rng = np.random.default_rng(0)
    sample = x_ref[rng.choice(len(x_ref), size=min(1000, len(x_ref)), replace=False)]
    if x_ref.ndim > 2:
        squeezer: Any = BitDepth(4, lower=float(x_ref.min()), upper=float(x_ref.max()))
    else:
        squeezer = Rounding.from_reference(x_ref.reshape(len(x_ref), -1))
    return FeatureSqueezing(service.model, [squeezer]).fit(sample)


def _drift_hook(service: GuardedService, flat: np.ndarray, responder: Any, settings: Any, metrics: Any, *,
                probs_ref: np.ndarray | None = None) -> Callable[[str, np.ndarray, np.ndarray, float], None]:  # fmt: skip
    """Feed every predicted row into the sliding window; test it every ``drift_every`` rows (at most once per
    ``drift_min_interval_s``: a check reads the whole reference), inputs, predicted probabilities (``probs_ref``:
    the model's on ``flat``, computed when not given) and explanations alike, and raise ``drift`` signals."""
    from collections import deque

    from garrison.data.schema import FeatureKind
    from garrison.monitor import DriftMonitor, DriftReference, prediction_drift
    from garrison.respond import Signal

    schema = service.schema
    categorical = [f.name for f in schema.features if f.kind is FeatureKind.CATEGORICAL]
    reference = DriftReference.fit(flat, feature_names=list(schema.names()), categorical=categorical)
    window = DriftMonitor(reference, window=settings.drift_window, exact=False)  # asymptotic KS: ms, not s
    state = {"since": 0, "last": -float("inf")}
    rng = np.random.default_rng(0)
    if probs_ref is None:
        probs_ref = np.asarray(service.model.predict_proba(flat.reshape(len(flat), *schema.sample_shape)))
    sample = rng.choice(len(probs_ref), size=min(5000, len(probs_ref)), replace=False)
    recent_probs: deque[np.ndarray] = deque(maxlen=settings.drift_window)
    # prediction and explanation drift compare the served model with itself: refitted when the model changes
    fitted = {"probs": probs_ref[sample], "explain": _reference_attributions(service, flat, rng)}

    def refit() -> None:
        probs = np.asarray(
            service.model.predict_proba(flat[sample].reshape(len(sample), *schema.sample_shape))
        )
        fitted.update(probs=probs, explain=_reference_attributions(service, flat, rng))
        recent_probs.clear()

    service.model_listeners.append(refit)

    def drift(key: str, x: np.ndarray, probs: np.ndarray, now: float) -> None:
        rows = x.reshape(len(x), -1)
        window.update(rows)
        recent_probs.extend(probs[-settings.drift_window :])
        state["since"] += len(rows)
        if state["since"] < settings.drift_every or len(window) < settings.drift_window:
            return
        if now - state["last"] < settings.drift_min_interval_s:
            return
        state["since"], state["last"] = 0, now
        report = window.check()
        drifted = list(report.drifted_columns)
        predictions = prediction_drift(fitted["probs"], np.array(recent_probs), class_names=[str(c) for c in service._labels],
                                       exact=False)  # fmt: skip
        metrics.drifted.set(len(drifted))
        if drifted:
            names = ", ".join(drifted[:5]) + (" ..." if len(drifted) > 5 else "")
            responder.handle(Signal("drift", "medium", "model", f"{len(drifted)} features drifted: {names}",
                                    details={"drifted": drifted, "window": len(window)}))  # fmt: skip
        if fitted["explain"] is not None:
            _explanation_drift(service, window, fitted["explain"], responder, rng)
        if predictions.drifted:
            classes = ", ".join(predictions.drifted_columns)
            responder.handle(Signal("drift", "high", "model", f"the predictions drifted (probability of {classes})",
                                    details={"drifted": list(predictions.drifted_columns), "window": len(window)}))  # fmt: skip

    return drift
