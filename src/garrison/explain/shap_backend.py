"""SHAP backends: tree and linear explainers on the estimator itself, native xgboost / lightgbm contributions,
and the budgeted permutation explainer on ``predict_proba`` for every other model.

Each backend is built once per :class:`~garrison.explain.Explainer` and maps rows (codec space) and one target
class per row to ``(values, base_values, output, notes)``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from garrison.core.errors import BudgetExceeded, InputError
from garrison.core.optional import import_optional

__all__ = ["LinearBackend", "NativeBackend", "PermutationBackend", "TreeBackend", "make"]

Result = tuple[np.ndarray, np.ndarray, np.ndarray, str, list[str], str]
_PROBABILITY_TREES = (
    "DecisionTreeClassifier",
    "ExtraTreeClassifier",
    "ExtraTreesClassifier",
    "RandomForestClassifier",
)


def _shap() -> Any:
    return import_optional("shap", extra="explain")


def make(
    route: str,
    model: Any,
    *,
    background: np.ndarray | None,
    max_background: int,
    max_evals: int | None,
    budget_s: float | None,
    seed: int,
) -> Any:
    """The backend object for ``route`` (``tree``, ``native``, ``linear`` or ``permutation``)."""
    bg = None if background is None else _sample(_flat(background), max_background, seed)
    if route == "tree":
        return TreeBackend(model, background=bg)
    if route == "native":
        return NativeBackend(model)
    if route == "linear":
        return LinearBackend(model, background=bg)
    return PermutationBackend(model, background=bg, max_background=max_background, max_evals=max_evals,
                              budget_s=budget_s, seed=seed)  # fmt: skip


def _flat(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)


def _sample(rows: np.ndarray, k: int, seed: int) -> np.ndarray:
    if len(rows) <= k:
        return rows
    idx = np.sort(np.random.default_rng(seed).choice(len(rows), size=k, replace=False))
    return rows[idx]


def _pick(
    values: np.ndarray, base: Any, targets: np.ndarray | None, *, single_output_sign: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row values, base value and target class from a shap output.

    ``values`` is ``(n, f, classes)`` or, for binary models with one output (the positive class's margin),
    ``(n, f)``: the negative class then gets the negated margin when ``single_output_sign`` holds. Without
    ``targets`` each row's predicted class is read from the explained output itself (``base + sum(values)``,
    rounded to 1e-9 so float noise does not break ties differently from ``predict_proba``), saving a model pass.
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    rows = np.arange(n)
    base_arr = np.asarray(base, dtype=np.float64)
    if values.ndim == 3:
        b = base_arr.reshape(-1) if base_arr.ndim <= 1 else base_arr
        if targets is None:
            targets = np.round(b + values.sum(axis=1), 9).argmax(axis=1)
        base_rows = b[targets] if b.ndim == 1 else b[rows, targets]
        return values[rows, :, targets], base_rows, targets
    b = np.full(n, float(base_arr.reshape(-1)[0])) if base_arr.size == 1 else base_arr.reshape(n)
    if targets is None:
        targets = (np.round(b + values.sum(axis=1), 9) > 0).astype(np.int64)
    sign = np.where(targets == 1, 1.0, -1.0) if single_output_sign else np.ones(n)
    return values * sign[:, None], b * sign, targets


class TreeBackend:
    """``shap.TreeExplainer``: path-dependent without background, interventional with it."""

    name = "shap.tree"

    def __init__(self, model: Any, *, background: np.ndarray | None) -> None:
        shap = _shap()
        est = model.estimator
        self._model = model
        self._shap = shap
        if background is None:
            self._explainer = shap.TreeExplainer(est)
            self._notes: list[str] = []
        else:
            self._explainer = shap.TreeExplainer(est, data=background, feature_perturbation="interventional")
            self._notes = [f"interventional tree SHAP against {len(background)} background rows"]
        self._output = "probability" if type(est).__name__ in _PROBABILITY_TREES else "margin"

    def explain(self, rows: np.ndarray, targets: np.ndarray | None) -> Result:
        x = self._model.model_input(rows)
        notes = list(self._notes)
        try:
            values = self._explainer.shap_values(x)
        except self._shap.utils._exceptions.ExplainerError as exc:
            if "Additivity" not in str(exc) or not self._notes:
                raise
            # interventional tree SHAP does not add up on some models (seen on HistGradientBoosting)
            self._explainer = self._shap.TreeExplainer(self._model.estimator)
            self._notes = [
                "interventional tree SHAP failed its additivity check: path-dependent tree SHAP used"
            ]
            notes = list(self._notes)
            values = self._explainer.shap_values(x)
        if isinstance(values, list):  # older shap: one array per class
            values = np.stack(values, axis=-1)
        vals, base, targets = _pick(values, self._explainer.expected_value, targets, single_output_sign=True)
        return vals, base, targets, self._output, notes, self.name


class LinearBackend:
    """``shap.LinearExplainer`` on ``coef_`` / ``intercept_``: exact SHAP of the decision function (margin)."""

    name = "shap.linear"

    def __init__(self, model: Any, *, background: np.ndarray | None) -> None:
        self._model = model
        self._background = background
        self._explainer: Any = None

    def explain(self, rows: np.ndarray, targets: np.ndarray | None) -> Result:
        shap = _shap()
        notes: list[str] = []
        if self._explainer is None:
            bg = self._background
            if bg is None:
                bg = _flat(rows)
                if len(bg) < 2:
                    raise InputError(
                        "a `background` of reference rows is needed to explain a single row with shap.linear",
                        field="background",
                    )
                notes.append("no background given: the explained rows are the reference")
            masker = shap.maskers.Independent(bg, max_samples=len(bg))
            explainer = shap.LinearExplainer(self._model.estimator, masker)
            if self._background is None:
                values = explainer.shap_values(self._model.model_input(rows))
                vals, base, targets = _pick(
                    values, explainer.expected_value, targets, single_output_sign=True
                )
                return vals, base, targets, "margin", notes, self.name
            self._explainer = explainer
        values = self._explainer.shap_values(self._model.model_input(rows))
        vals, base, targets = _pick(values, self._explainer.expected_value, targets, single_output_sign=True)
        return vals, base, targets, "margin", notes, self.name


class NativeBackend:
    """xgboost ``pred_contribs`` / lightgbm ``pred_contrib``: the libraries' own exact tree SHAP (margin)."""

    def __init__(self, model: Any) -> None:
        self._model = model
        est = model.estimator
        self._lib = "xgboost" if type(est).__module__.startswith("xgboost") else "lightgbm"
        self.name = f"{self._lib}.contribs"

    def explain(
        self, rows: np.ndarray, targets: np.ndarray | None
    ) -> Result:  # pragma: no cover - needs xgboost/lgbm
        est = self._model.estimator
        x = self._model.model_input(rows)
        n, f = len(rows), x.shape[1]
        if self._lib == "xgboost":
            xgb = import_optional("xgboost", extra="explain")
            contribs = np.asarray(est.get_booster().predict(xgb.DMatrix(x), pred_contribs=True))
            # binary: (n, f + 1); multiclass: (n, classes, f + 1)
            if contribs.ndim == 3:
                contribs = np.transpose(contribs, (0, 2, 1))
        else:
            contribs = np.asarray(est.predict(x, pred_contrib=True))
            # binary: (n, f + 1); multiclass: (n, classes * (f + 1)), class-major
            if contribs.shape[1] != f + 1:
                contribs = np.transpose(contribs.reshape(n, -1, f + 1), (0, 2, 1))
        values, base = contribs[:, :f], contribs[:, f]
        vals, base_rows, targets = _pick(values, base, targets, single_output_sign=True)
        return vals, base_rows, targets, "margin", [], self.name


class PermutationBackend:
    """``shap.explainers.Permutation`` on ``predict_proba``: model-agnostic, ``max_evals`` model evaluations
    (each over the background rows) per explained row, optionally fitted into a time budget."""

    name = "shap.permutation"

    def __init__(
        self,
        model: Any,
        *,
        background: np.ndarray | None,
        max_background: int,
        max_evals: int | None,
        budget_s: float | None,
        seed: int,
    ) -> None:
        self._model = model
        self._background = background
        self._max_background = max_background
        self._max_evals = max_evals
        self._budget_s = budget_s
        self._seed = seed
        self._shape = model.input_spec.shape

    def _f(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(self._model.predict_proba(z.reshape((len(z), *self._shape))), dtype=np.float64)

    def explain(self, rows: np.ndarray, targets: np.ndarray | None) -> Result:
        shap = _shap()
        start = time.perf_counter()
        x = _flat(rows)
        n, f = x.shape
        notes: list[str] = []
        bg = self._background
        if bg is None:
            if n < 2:
                raise InputError(
                    "a `background` of reference rows is needed to explain a single row with shap.permutation",
                    field="background",
                )
            bg = _sample(x, self._max_background, self._seed)
            notes.append("no background given: the explained rows are the reference")
        minimum = 2 * f + 1  # one permutation forwards and backwards
        evals = max(self._max_evals if self._max_evals is not None else max(500, minimum), minimum)
        if self._max_evals is not None and self._max_evals < minimum:
            notes.append(f"max_evals raised to {minimum}, the least one permutation of {f} features needs")
        if self._budget_s is not None:
            t0 = time.perf_counter()
            self._f(bg)
            per_eval = max(time.perf_counter() - t0, 1e-6)
            left = self._budget_s - (time.perf_counter() - start)
            fits = int(left / (n * per_eval))
            if fits < evals:
                evals = max(fits, minimum)
                notes.append(f"max_evals set to {evals} per row to fit the {self._budget_s:g} s budget")
        masker = shap.maskers.Independent(bg, max_samples=len(bg))
        explainer = shap.explainers.Permutation(self._f, masker, seed=self._seed)
        chunk = n if self._budget_s is None else max(1, min(n, 16))
        vals_parts: list[np.ndarray] = []
        base_parts: list[np.ndarray] = []
        target_parts: list[np.ndarray] = []
        for lo in range(0, n, chunk):
            if self._budget_s is not None and lo and time.perf_counter() - start > self._budget_s:
                raise BudgetExceeded(self._budget_s)
            e = explainer(x[lo : lo + chunk], max_evals=evals, silent=True)
            chunk_targets = None if targets is None else targets[lo : lo + chunk]
            v, b, t = _pick(e.values, e.base_values, chunk_targets, single_output_sign=False)
            vals_parts.append(v)
            base_parts.append(b)
            target_parts.append(t)
        notes.append(f"{evals} model evaluations per row over {len(bg)} background rows")
        return (
            np.concatenate(vals_parts),
            np.concatenate(base_parts),
            np.concatenate(target_parts),
            "probability",
            notes,
            self.name,
        )
