"""Membership inference as an audit: was this record in the model's training set?

Three attacks score records (larger = more likely a member), all in float64:

- ``threshold`` — the loss/confidence-threshold baseline (Yeom et al. 2018). It ranks records by the logit-scaled
  confidence of the true class ``phi = log p_y - log(sum of the other classes)``, which orders records exactly as
  the cross-entropy loss does but keeps resolution where ``p_y`` rounds to 1 and float32 losses tie at 0.
- ``lira-online`` / ``lira-offline`` — LiRA (Carlini et al. 2022): per record, Gaussians fitted to ``phi`` under
  reference models trained with the record (IN) and without it (OUT); online scores the likelihood ratio, offline
  a one-sided test against the OUT Gaussian only. With few reference models one variance shared by every record
  (``fixed_variance``) is more stable than per-record variances.
- ``rmia-online`` / ``rmia-offline`` — RMIA (Zarifzadeh et al. 2024): the share of population records ``z`` that
  ``x`` dominates, ``Pr_z[(p(x|θ)/p(x)) / (p(z|θ)/p(z)) >= γ]``, with ``p(·)`` the mean true-class probability
  over reference models; offline estimates ``p(x)`` from OUT models as ``((1+a) p_OUT(x) + 1 - a) / 2``.

Reference models come from a ``train_fn(x, y, seed) -> Classifier`` (:func:`sklearn_trainer` clones and fits a
scikit-learn estimator). :func:`run_shadow_experiment` is the design that makes TPR at 0.1 % FPR meaningful: M
models on random halves of a pool, every model in turn the target and the others its references, scores pooled.
:func:`audit_membership` attacks one given model: its training records are the members, held-out records the
non-members, and reference models are trained on random halves of the non-members (offline attacks).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from garrison.privacy.roc import MembershipEvaluation, evaluate_membership, split_calibration

if TYPE_CHECKING:
    from garrison.adapters.base import Classifier

__all__ = [
    "METHODS",
    "MembershipAudit",
    "ShadowExperiment",
    "TrainFn",
    "audit_membership",
    "lira_scores",
    "rmia_scores",
    "run_shadow_experiment",
    "sklearn_trainer",
    "threshold_scores",
    "torch_trainer",
    "train_references",
    "true_class_signals",
]

METHODS = ("threshold", "lira-online", "lira-offline", "rmia-online", "rmia-offline")
_TINY = np.finfo(np.float64).tiny


class TrainFn(Protocol):
    """Trains one reference model on ``(x, y)``; ``seed`` makes it reproducible."""

    def __call__(self, x: np.ndarray, y: np.ndarray, seed: int) -> Classifier: ...


def sklearn_trainer(estimator: Any, *, name: str = "reference") -> TrainFn:
    """A :class:`TrainFn` that fits a fresh ``sklearn.base.clone`` of ``estimator`` (its ``random_state``, when
    it has one, set to the seed) and wraps it as a :class:`~garrison.adapters.SklearnClassifier`."""
    from sklearn.base import clone

    from garrison.adapters.sklearn_model import SklearnClassifier

    def train(x: np.ndarray, y: np.ndarray, seed: int) -> Classifier:
        model = clone(estimator)
        if "random_state" in model.get_params():
            model.set_params(random_state=seed)
        model.fit(x.reshape(len(x), -1), y)
        return SklearnClassifier(model, name=f"{name}-{seed}")

    return train


def torch_trainer(
    module: Any,
    *,
    input_spec: Any,
    n_classes: int,
    epochs: int = 30,
    lr: float = 1e-3,
    batch_size: int = 64,
    weight_decay: float = 0.0,
) -> TrainFn:
    """A :class:`TrainFn` for a torch network: a deep copy of ``module`` with every layer's parameters reset
    (``reset_parameters``, seeded; module hooks dropped), trained with Adam on cross-entropy for ``epochs`` over shuffled mini-batches,
    and wrapped as a :class:`~garrison.adapters.TorchClassifier` (``module`` must output logits)."""
    import copy

    import torch

    from garrison.adapters.torch_model import TorchClassifier

    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"need epochs >= 1, batch_size >= 1 and lr > 0, got {epochs}, {batch_size}, {lr}")

    def train(x: np.ndarray, y: np.ndarray, seed: int) -> Classifier:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = copy.deepcopy(module).cpu().train()
            for layer in net.modules():
                # hooks of the original's training (Opacus' per-sample gradient hooks) do not belong to the copy
                for hooks in (
                    "_forward_hooks",
                    "_forward_pre_hooks",
                    "_backward_hooks",
                    "_backward_pre_hooks",
                ):
                    getattr(layer, hooks, {}).clear()
                if hasattr(layer, "reset_parameters"):
                    layer.reset_parameters()
            xs = torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape((len(x), *input_spec.shape))
            ys = torch.as_tensor(np.asarray(y, dtype=np.int64))
            opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
            gen = torch.Generator().manual_seed(seed)
            for _ in range(epochs):
                order = torch.randperm(len(xs), generator=gen)
                for start in range(0, len(xs), batch_size):
                    b = order[start : start + batch_size]
                    opt.zero_grad()
                    torch.nn.functional.cross_entropy(net(xs[b]), ys[b]).backward()
                    opt.step()
        return TorchClassifier(
            net.eval(), input_spec=input_spec, n_classes=n_classes, name=f"reference-{seed}"
        )

    return train


def true_class_signals(
    model: Classifier, x: np.ndarray, y: np.ndarray, *, batch_size: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """``(p_y, phi)`` per record, float64: the probability of the true class and its logit scaling
    ``log p_y - log(sum_{j != y} p_j)`` (the other classes are summed, not taken as ``1 - p_y``, so a confident
    record keeps its resolution). ``y`` holds column indices into ``predict_proba``."""
    y = np.asarray(y, dtype=np.int64)
    probs = np.concatenate(
        [np.asarray(model.predict_proba(x[i : i + batch_size]), dtype=np.float64) for i in range(0, len(x), batch_size)]
    ) if len(x) else np.zeros((0, model.n_classes))  # fmt: skip
    rows = np.arange(len(y))
    p_true = probs[rows, y].copy()
    probs[rows, y] = 0.0
    others = probs.sum(axis=1)
    phi = np.log(np.maximum(p_true, _TINY)) - np.log(np.maximum(others, _TINY))
    return p_true, phi


def threshold_scores(phi: np.ndarray) -> np.ndarray:
    """The loss-threshold baseline: records ranked by their (logit-scaled) confidence in the true class."""
    return np.asarray(phi, dtype=np.float64).copy()


def _masked_moments(
    values: np.ndarray, mask: np.ndarray, fixed_variance: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-record mean and standard deviation of ``values[k, j]`` over models ``k`` with ``mask[k, j]``; records
    without any model get the mean shift seen elsewhere filled in by the caller (NaN here)."""
    count = mask.sum(axis=0)
    total = np.where(mask, values, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        resid = np.where(mask, values - mean, 0.0)
        sq = (resid**2).sum(axis=0)
        dof = int(count.sum() - (count > 0).sum())
        pooled = math.sqrt(sq.sum() / dof) if dof > 0 else math.nan
        per = np.sqrt(sq / np.maximum(count - 1, 1))
    sd = np.full(values.shape[1], pooled) if fixed_variance else np.where(count >= 2, per, pooled)
    floor = 1e-6 * (pooled if math.isfinite(pooled) and pooled > 0 else 1.0)
    sd = np.maximum(np.nan_to_num(sd, nan=1.0), floor)
    return mean, sd, count


def lira_scores(
    target_phi: np.ndarray,
    ref_phi: np.ndarray,
    ref_in: np.ndarray,
    *,
    online: bool = True,
    fixed_variance: bool | None = None,
) -> np.ndarray:
    """LiRA membership scores of records from the target's ``phi`` (n,) and the reference models' ``ref_phi``
    (k, n), ``ref_in[k, j]`` saying whether reference ``k`` trained on record ``j``.

    Online: ``log N(phi; mu_in, sd_in) - log N(phi; mu_out, sd_out)``. Offline (OUT models only): the one-sided
    test ``-log P(Z >= (phi - mu_out) / sd_out)``. ``fixed_variance`` (default: when fewer than 64 reference
    models) shares one variance per side across records.
    """
    from scipy.stats import norm

    phi = np.asarray(target_phi, dtype=np.float64)
    ref = np.asarray(ref_phi, dtype=np.float64)
    inside = np.asarray(ref_in, dtype=bool)
    if ref.shape != inside.shape or ref.shape[1:] != phi.shape:
        raise ValueError(f"shapes disagree: target {phi.shape}, references {ref.shape}, masks {inside.shape}")
    if fixed_variance is None:
        fixed_variance = ref.shape[0] < 64
    mu_out, sd_out, n_out = _masked_moments(ref, ~inside, fixed_variance)
    if not (n_out > 0).any():
        raise ValueError("no reference model is OUT for any record")
    mu_out = np.where(n_out > 0, mu_out, np.nanmean(mu_out))
    if not online:
        return -norm.logsf((phi - mu_out) / sd_out)
    mu_in, sd_in, n_in = _masked_moments(ref, inside, fixed_variance)
    if not (n_in > 0).any():
        raise ValueError("online LiRA needs reference models trained on the records (IN); use online=False")
    shift = float(np.nanmean(mu_in - mu_out))  # records no IN model saw: the average IN/OUT gap
    mu_in = np.where(n_in > 0, mu_in, mu_out + shift)
    return norm.logpdf(phi, mu_in, sd_in) - norm.logpdf(phi, mu_out, sd_out)


def _marginal(probs: np.ndarray, inside: np.ndarray, *, online: bool, offline_a: float) -> np.ndarray:
    """``p(x)`` of RMIA: mean over reference models (online), or the offline approximation from OUT models."""
    if online:
        return probs.mean(axis=0)
    out = ~inside
    count = out.sum(axis=0)
    mean_out = np.where(out, probs, 0.0).sum(axis=0) / np.maximum(count, 1)
    mean_out = np.where(count > 0, mean_out, probs.mean(axis=0))
    return 0.5 * ((1.0 + offline_a) * mean_out + (1.0 - offline_a))


def rmia_scores(
    target_p_x: np.ndarray,
    ref_p_x: np.ndarray,
    ref_in_x: np.ndarray,
    target_p_z: np.ndarray,
    ref_p_z: np.ndarray,
    ref_in_z: np.ndarray,
    *,
    online: bool = True,
    gamma: float = 1.0,
    offline_a: float = 0.3,
    z_index: np.ndarray | None = None,
) -> np.ndarray:
    """RMIA scores: for each record ``x``, the share of population records ``z`` with
    ``(p(x|θ)/p(x)) / (p(z|θ)/p(z)) >= gamma`` (ties of that count broken by interpolating between neighbouring
    ``z``; the order is the count's). ``p_*`` are true-class probabilities (target (n,), references
    (k, n)); ``z_index[j]`` is the position of record ``j`` among the ``z`` (-1 when absent), so a record is never
    compared with itself."""
    if gamma <= 0:
        raise ValueError(f"`gamma` must be > 0, got {gamma}")
    if not 0 <= offline_a <= 1:
        raise ValueError(f"`offline_a` must be in [0, 1], got {offline_a}")
    px = _marginal(
        np.asarray(ref_p_x, np.float64), np.asarray(ref_in_x, bool), online=online, offline_a=offline_a
    )
    pz = _marginal(
        np.asarray(ref_p_z, np.float64), np.asarray(ref_in_z, bool), online=online, offline_a=offline_a
    )
    ratio_x = np.asarray(target_p_x, np.float64) / np.maximum(px, _TINY)
    ratio_z = np.asarray(target_p_z, np.float64) / np.maximum(pz, _TINY)
    if not len(ratio_z):
        raise ValueError("RMIA needs at least one population record z")
    log_z = np.sort(np.log(np.maximum(ratio_z, _TINY)))
    log_x = np.log(np.maximum(ratio_x, _TINY)) - math.log(gamma)
    dominated = np.searchsorted(log_z, log_x, side="right").astype(np.float64)
    n_z = np.full(len(ratio_x), float(len(ratio_z)))
    if z_index is not None:
        zi = np.asarray(z_index, dtype=np.int64)
        present = zi >= 0
        own = np.log(np.maximum(ratio_z[np.where(present, zi, 0)], _TINY))
        dominated -= present & (own <= log_x)
        n_z -= present
    # The count is a step function (many records dominate every z and would tie at 1): the position of x
    # between its neighbouring z values (log scale; an exponential tail beyond the extremes) breaks ties
    # without changing the order the count gives.
    scale = float(np.std(log_z)) or 1.0
    right = np.searchsorted(log_z, log_x, side="right")
    lo = log_z[np.clip(right - 1, 0, len(log_z) - 1)]
    hi = log_z[np.clip(right, 0, len(log_z) - 1)]
    with np.errstate(invalid="ignore", divide="ignore"):
        inner = np.where(hi > lo, (log_x - lo) / (hi - lo), 0.0)
    u = np.where(right == 0, np.exp(np.minimum(log_x - log_z[0], 0.0) / scale) * 0.5,
                 np.where(right >= len(log_z), 1.0 - 0.5 * np.exp(-np.maximum(log_x - log_z[-1], 0.0) / scale),
                          np.clip(inner, 0.0, 1.0 - 1e-12)))  # fmt: skip
    return (dominated + u) / (n_z + 1.0)


def train_references(
    train_fn: TrainFn,
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_models: int,
    seed: int = 0,
    fraction: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
    deadline: float | None = None,
) -> tuple[list[Classifier], np.ndarray]:
    """Train ``n_models`` models, each on a random ``fraction`` of ``(x, y)``; returns them and the ``(n_models,
    n)`` mask of which records each saw. Models are balanced: every record is IN for about half of them (each
    pair of models splits one permutation when ``fraction`` is 0.5). Stops early at ``deadline``
    (``time.monotonic()``) with the models trained so far."""
    if n_models < 1:
        raise ValueError(f"`n_models` must be >= 1, got {n_models}")
    if not 0 < fraction < 1:
        raise ValueError(f"`fraction` must be in (0, 1), got {fraction}")
    n = len(x)
    rng = np.random.default_rng(seed)
    masks = np.zeros((n_models, n), dtype=bool)
    models: list[Classifier] = []
    perm = rng.permutation(n)
    for k in range(n_models):
        if fraction == 0.5:
            if k % 2 == 0:
                perm = rng.permutation(n)
            half = perm[: n // 2] if k % 2 == 0 else perm[n // 2 :]
            masks[k, half] = True
        else:
            masks[k, rng.permutation(n)[: round(fraction * n)]] = True
        if deadline is not None and time.monotonic() > deadline:
            masks = masks[:k]
            break
        models.append(train_fn(x[masks[k]], y[masks[k]], int(rng.integers(2**31 - 1))))
        if progress is not None:
            progress(k + 1, n_models)
    return models, masks[: len(models)]


def _signals(models: Sequence[Classifier], x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = [true_class_signals(m, x, y) for m in models]
    return np.stack([p for p, _ in pairs]), np.stack([s for _, s in pairs])


@dataclass(frozen=True)
class ShadowExperiment:
    """M models on random halves of one pool: ``in_mask[i, j]`` whether model ``i`` trained on record ``j``,
    ``prob`` / ``phi`` its true-class probability and logit-scaled confidence on every record (float64)."""

    in_mask: np.ndarray
    prob: np.ndarray
    phi: np.ndarray

    @property
    def n_models(self) -> int:
        return int(self.in_mask.shape[0])

    def scores(
        self, method: str, target: int, *, fixed_variance: bool | None = None, gamma: float = 1.0,
        offline_a: float = 0.3,
    ) -> np.ndarray:  # fmt: skip
        """Scores of every pool record against model ``target``, the other models serving as references."""
        if method not in METHODS:
            raise ValueError(f"`method` must be one of {', '.join(METHODS)}, got {method!r}")
        refs = np.arange(self.n_models) != target
        if method == "threshold":
            return threshold_scores(self.phi[target])
        if method.startswith("lira"):
            return lira_scores(self.phi[target], self.phi[refs], self.in_mask[refs],
                               online=method == "lira-online", fixed_variance=fixed_variance)  # fmt: skip
        z = np.flatnonzero(~self.in_mask[target])  # the population: records the target never saw
        z_index = np.full(self.in_mask.shape[1], -1, dtype=np.int64)
        z_index[z] = np.arange(len(z))
        return rmia_scores(
            self.prob[target], self.prob[refs], self.in_mask[refs], self.prob[target, z], self.prob[refs][:, z],
            self.in_mask[refs][:, z], online=method == "rmia-online", gamma=gamma, offline_a=offline_a,
            z_index=z_index,
        )  # fmt: skip

    def pooled(self, method: str, **options: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(member_scores, nonmember_scores)`` pooled over every model as the target (leave-one-out)."""
        members, nonmembers = [], []
        for i in range(self.n_models):
            s = self.scores(method, i, **options)
            members.append(s[self.in_mask[i]])
            nonmembers.append(s[~self.in_mask[i]])
        return np.concatenate(members), np.concatenate(nonmembers)


def run_shadow_experiment(
    train_fn: TrainFn,
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_models: int = 16,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> ShadowExperiment:
    """Train ``n_models`` models on random halves of ``(x, y)`` and record every model's signals on every record.
    ``y`` holds class indices (the columns of ``predict_proba``)."""
    if n_models < 3:
        raise ValueError(f"`n_models` must be >= 3 (a target and references of both kinds), got {n_models}")
    x = np.asarray(x)
    y = np.asarray(y, dtype=np.int64)
    models, masks = train_references(train_fn, x, y, n_models=n_models, seed=seed, progress=progress)
    prob, phi = _signals(models, x, y)
    return ShadowExperiment(in_mask=masks, prob=prob, phi=phi)


@dataclass(frozen=True)
class MembershipAudit:
    """Membership inference against one model: per method, the scores of the members and non-members, and
    their evaluation (thresholds fixed on the calibration half of the non-members)."""

    evaluations: dict[str, MembershipEvaluation]
    member_scores: dict[str, np.ndarray]
    nonmember_scores: dict[str, np.ndarray]
    n_references: int
    calibration: np.ndarray
    notes: tuple[str, ...] = field(default=())

    def most_exposed(self, method: str, k: int = 10) -> list[tuple[int, float]]:
        """The ``k`` member records (their positions among the members) with the highest scores, highest first."""
        scores = self.member_scores[method]
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(i), float(scores[i])) for i in order]


def audit_membership(
    target: Classifier,
    members: tuple[np.ndarray, np.ndarray],
    nonmembers: tuple[np.ndarray, np.ndarray],
    *,
    train_fn: TrainFn | None = None,
    n_references: int = 8,
    methods: Sequence[str] = ("threshold", "lira-offline"),
    fprs: Sequence[float] = (0.001, 0.01),
    seed: int = 0,
    online: bool = False,
    fixed_variance: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
    deadline: float | None = None,
) -> MembershipAudit:
    """Attack ``target`` with its training records ``members`` and held-out ``nonmembers`` (``(x, y)`` with ``y``
    as class indices). ``threshold`` needs no reference model. Otherwise reference models (``train_fn``) are
    trained on random halves of the non-members (``online=False``: every member is OUT for every reference, every
    non-member OUT for about half; the offline attacks ``lira-offline``, ``rmia-offline`` apply), or of members and
    non-members together (``online=True``: every record IN for about half the references; the online attacks
    apply too). A seeded half of the non-members fixes the thresholds, the other half measures the FPR."""
    allowed = METHODS if online else ("threshold", "lira-offline", "rmia-offline")
    unknown = [m for m in methods if m not in allowed]
    if unknown:
        raise ValueError(f"`methods` may hold {', '.join(allowed)}; got {unknown[0]!r}")
    xm, ym = np.asarray(members[0]), np.asarray(members[1], dtype=np.int64)
    xn, yn = np.asarray(nonmembers[0]), np.asarray(nonmembers[1], dtype=np.int64)
    p_all, phi_all = (np.concatenate(v) for v in zip(true_class_signals(target, xm, ym),
                                                      true_class_signals(target, xn, yn), strict=True))  # fmt: skip
    n_m = len(xm)
    needs_refs = any(m != "threshold" for m in methods)
    notes: list[str] = []
    ref_models: list[Classifier] = []
    all_in = np.zeros((0, n_m + len(xn)), dtype=bool)
    if needs_refs:
        if train_fn is None:
            raise ValueError("reference-model attacks need a `train_fn`")
        if online:
            pool_x, pool_y = np.concatenate([xm, xn]), np.concatenate([ym, yn])
        else:
            pool_x, pool_y = xn, yn
        ref_models, mask = train_references(
            train_fn, pool_x, pool_y, n_models=n_references, seed=seed, progress=progress, deadline=deadline
        )
        all_in = (
            mask if online else np.concatenate([np.zeros((len(ref_models), n_m), dtype=bool), mask], axis=1)
        )
        if len(ref_models) < 2:
            notes.append("the time budget allowed fewer than 2 reference models: reference attacks skipped")
            methods = [m for m in methods if m == "threshold"]
        elif len(ref_models) < n_references:
            notes.append(f"the time budget allowed {len(ref_models)} of {n_references} reference models")
    ref_p = ref_phi = np.zeros((0, n_m + len(xn)))
    if ref_models:
        ref_p, ref_phi = _signals(ref_models, np.concatenate([xm, xn]), np.concatenate([ym, yn]))
    calibration, _ = split_calibration(len(xn), seed=np.random.default_rng([seed, 1]))
    member_scores: dict[str, np.ndarray] = {}
    nonmember_scores: dict[str, np.ndarray] = {}
    for method in methods:
        if method == "threshold":
            s = threshold_scores(phi_all)
        elif method.startswith("lira"):
            s = lira_scores(
                phi_all, ref_phi, all_in, online=method == "lira-online", fixed_variance=fixed_variance
            )
        else:
            # population z: the calibration non-members (never scored against themselves)
            z = n_m + calibration
            z_index = np.full(len(phi_all), -1, dtype=np.int64)
            z_index[z] = np.arange(len(z))
            s = rmia_scores(p_all, ref_p, all_in, p_all[z], ref_p[:, z], all_in[:, z],
                            online=method == "rmia-online", z_index=z_index)  # fmt: skip
        member_scores[method] = s[:n_m]
        nonmember_scores[method] = s[n_m:]
    evaluations = {
        m: evaluate_membership(
            member_scores[m], nonmember_scores[m], method=m, fprs=fprs, calibration=calibration
        )
        for m in member_scores
    }
    return MembershipAudit(
        evaluations=evaluations,
        member_scores=member_scores,
        nonmember_scores=nonmember_scores,
        n_references=len(ref_models),
        calibration=calibration,
        notes=tuple(notes),
    )
