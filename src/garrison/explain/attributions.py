"""Feature attributions for any Garrison :class:`~garrison.adapters.Classifier`, behind one call.

:func:`attributions` (or an :class:`Explainer` kept for many calls, as the inference service does) routes a model
to the cheapest faithful backend and returns :class:`Attributions` for one class per row:

- scikit-learn trees, forests and boosting → ``shap.tree`` (TreeExplainer), in the model's output units;
- multiclass ``GradientBoostingClassifier`` (shap refuses it) → ``shap.permutation``, with a note saying so;
- xgboost / lightgbm, when installed → their native contributions (``xgboost.contribs`` / ``lightgbm.contribs``);
- scikit-learn linear classifiers → ``shap.linear`` (LinearExplainer), in margin units;
- torch modules → ``captum.integrated-gradients`` (or ``saliency``; ``deeplift`` only within its tolerance);
- anything else (ONNX, remote, pipelines with preprocessing) → ``shap.permutation`` on ``predict_proba``, budgeted.

Rows are explained in the space the Classifier takes (codec space for tabular data), so ``values[:, j]`` lines
up with ``dataset.schema.names()[j]`` and with ``model.input_spec.feature_names``. A pipeline whose estimator
takes decoded records is therefore explained model-agnostically, never inside its own preprocessing.
Explanations can be fooled (Slack et al. 2020): they are evidence beside other checks, never a control alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from garrison.core.errors import InputError, ModelInputMismatchError

if TYPE_CHECKING:
    from garrison.adapters.base import Classifier

__all__ = ["METHODS", "Attributions", "Explainer", "attributions"]

METHODS = (
    "auto",
    "tree",
    "native",
    "linear",
    "permutation",
    "integrated-gradients",
    "saliency",
    "deeplift",
)
_TORCH_METHODS = ("integrated-gradients", "saliency", "deeplift")


@dataclass(frozen=True, eq=False)
class Attributions:
    """Per-row attributions for one class per row.

    ``values`` is ``(n, n_features)`` (float64, rows flattened for image inputs), ``base_values`` ``(n,)``: the
    model's expected output for the row's ``target`` class (for IG and DeepLift the output at the baseline), in
    the units named by ``output`` (``"probability"``, ``"margin"`` or ``"logit"``). For SHAP, IG and DeepLift
    ``base_values + values.sum(axis=1)`` is the explained output of each row; Saliency values are absolute
    gradients and sum to nothing in particular. ``method`` is the backend actually used; ``notes`` say why it
    differs from the one asked for, and what approximations were made.
    """

    values: np.ndarray
    base_values: np.ndarray
    target: np.ndarray
    method: str
    output: str
    feature_names: tuple[str, ...] | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def n_rows(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.values.shape[1])

    def global_importance(self) -> np.ndarray:
        """Mean absolute attribution per feature, ``(n_features,)``."""
        return np.abs(self.values).mean(axis=0)

    def top_features(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` features of largest global importance, as ``(name, importance)`` (names ``f<j>`` when the
        model has none), largest first; ties keep feature order."""
        imp = self.global_importance()
        order = np.argsort(-imp, kind="stable")[: max(0, k)]
        names = self.feature_names or tuple(f"f{j}" for j in range(self.n_features))
        return [(names[j], float(imp[j])) for j in order]

    def row_top_features(self, k: int = 3) -> list[list[tuple[str, float]]]:
        """Per row, its ``k`` features of largest |attribution| as ``(name, signed value)``, largest first: the
        compact explanation the inference service attaches to each prediction."""
        names = self.feature_names or tuple(f"f{j}" for j in range(self.n_features))
        order = np.argsort(-np.abs(self.values), axis=1, kind="stable")[:, : max(0, k)]
        return [[(names[j], float(row[j])) for j in idx] for row, idx in zip(self.values, order, strict=True)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "output": self.output,
            "n_rows": self.n_rows,
            "n_features": self.n_features,
            "feature_names": list(self.feature_names) if self.feature_names is not None else None,
            "target": self.target.astype(int).tolist(),
            "values": self.values.tolist(),
            "base_values": self.base_values.tolist(),
            "global_importance": self.global_importance().tolist(),
            "notes": list(self.notes),
        }


class Explainer:
    """Attributions for one model, prepared once and reused for every batch (the per-row service path).

    ``background`` holds reference rows (codec space): the masker of the linear and permutation explainers, the
    interventional reference of tree explainers (without it tree SHAP is path-dependent and needs none), and,
    averaged, the baseline of IG and DeepLift (zeros without it). ``max_evals`` bounds model evaluations per row of
    the permutation explainer and ``budget_s`` the wall time of one :meth:`explain` call on that path
    (:class:`~garrison.core.errors.BudgetExceeded` when it runs out with rows left). ``seed`` fixes every random
    choice (background sampling, permutations).
    """

    def __init__(
        self,
        model: Classifier,
        *,
        background: np.ndarray | None = None,
        method: str = "auto",
        max_evals: int | None = None,
        budget_s: float | None = None,
        max_background: int = 100,
        ig_steps: int = 50,
        deeplift_tolerance: float = 1e-3,
        seed: int = 0,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"`method` must be one of {', '.join(METHODS)}, got {method!r}")
        if max_evals is not None and max_evals < 1:
            raise ValueError(f"`max_evals` must be >= 1, got {max_evals!r}")
        if budget_s is not None and not budget_s > 0:
            raise ValueError(f"`budget_s` must be > 0, got {budget_s!r}")
        if max_background < 1:
            raise ValueError(f"`max_background` must be >= 1, got {max_background!r}")
        if ig_steps < 2:
            raise ValueError(f"`ig_steps` must be >= 2, got {ig_steps!r}")
        if not deeplift_tolerance >= 0:
            raise ValueError(f"`deeplift_tolerance` must be >= 0, got {deeplift_tolerance!r}")
        self.model = model
        self.max_evals = max_evals
        self.budget_s = budget_s
        self.max_background = max_background
        self.ig_steps = ig_steps
        self.deeplift_tolerance = deeplift_tolerance
        self.seed = seed
        self.background = None if background is None else self._rows(background, what="background")
        self.requested = method
        self.route, self.route_notes = _route(model, method)
        self._backend: Any = None

    def explain(
        self, x: np.ndarray, *, target: int | Sequence[int] | np.ndarray | None = None
    ) -> Attributions:
        """Attributions of rows ``x`` for class ``target`` (an index, one index per row, or ``None`` for the
        class the model predicts for each row)."""
        rows = self._rows(x, what="x")
        targets = self._targets(rows, target)
        if targets is None and self.route in _TORCH_METHODS:
            targets = np.asarray(self.model.predict_proba(rows)).argmax(axis=1).astype(np.int64)
        backend = self._prepared()
        # shap backends read the predicted class from their own output (one model pass fewer)
        values, base, targets, output, notes, used = backend.explain(rows, targets)
        names = self.model.input_spec.feature_names
        if names is not None and len(names) != values.shape[1]:
            names = None
        return Attributions(
            values=np.asarray(values, dtype=np.float64).reshape(len(rows), -1),
            base_values=np.asarray(base, dtype=np.float64).reshape(len(rows)),
            target=np.asarray(targets, dtype=np.int64),
            method=used,
            output=output,
            feature_names=tuple(str(n) for n in names) if names is not None else None,
            notes=tuple(self.route_notes) + tuple(notes),
        )

    def _prepared(self) -> Any:
        if self._backend is None:
            if self.route in _TORCH_METHODS:
                from garrison.explain.captum_backend import TorchBackend

                self._backend = TorchBackend(
                    self.model,
                    method=self.route,
                    background=self.background,
                    steps=self.ig_steps,
                    deeplift_tolerance=self.deeplift_tolerance,
                )
            else:
                from garrison.explain import shap_backend

                self._backend = shap_backend.make(
                    self.route,
                    self.model,
                    background=self.background,
                    max_background=self.max_background,
                    max_evals=self.max_evals,
                    budget_s=self.budget_s,
                    seed=self.seed,
                )
        return self._backend

    def _rows(self, x: Any, *, what: str) -> np.ndarray:
        arr = np.asarray(x)
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
            raise ModelInputMismatchError(
                f"`{what}` must be a numeric array, got dtype {arr.dtype}", field=what
            )
        if arr.ndim < 2:
            raise ModelInputMismatchError(
                f"`{what}` must be a batch of shape (n, {', '.join(map(str, self.model.input_spec.shape))}), "
                f"got shape {arr.shape}",
                field=what,
            )
        if len(arr) == 0:
            raise InputError(f"`{what}` has no rows", field=what)
        arr = self.model.input_spec.conform(arr)
        if not np.all(np.isfinite(arr)):
            raise InputError(f"`{what}` holds NaN or infinite values", field=what)
        return arr

    def _targets(self, rows: np.ndarray, target: Any) -> np.ndarray | None:
        n, k = len(rows), self.model.n_classes
        if target is None:
            return None
        t = np.asarray(target)
        if t.ndim == 0:
            t = np.full(n, t)
        if t.shape != (n,) or not np.issubdtype(t.dtype, np.integer):
            raise ModelInputMismatchError(
                f"`target` must be a class index or one index per row ({n}), got {np.asarray(target)!r}",
                field="target",
            )
        if t.min() < 0 or t.max() >= k:
            raise ModelInputMismatchError(
                f"`target` must be class indices in [0, {k}), got {int(t.min())}..{int(t.max())}",
                field="target",
            )
        return t.astype(np.int64)


def attributions(
    model: Classifier,
    x: np.ndarray,
    *,
    background: np.ndarray | None = None,
    method: str = "auto",
    target: int | Sequence[int] | np.ndarray | None = None,
    max_evals: int | None = None,
    budget_s: float | None = None,
    seed: int = 0,
) -> Attributions:
    """Attributions of rows ``x`` (codec space) by the backend ``method`` (``"auto"`` routes by model type, see
    the module docstring). One-off form of ``Explainer(model, ...).explain(x, target=target)``."""
    return Explainer(
        model, background=background, method=method, max_evals=max_evals, budget_s=budget_s, seed=seed
    ).explain(x, target=target)


# ------------------------------------------------------------------------------------------------ routing


def _route(model: Any, method: str) -> tuple[str, list[str]]:
    """The backend for ``model`` and ``method``, and notes on why it differs from the request."""
    kind = _model_kind(model)
    if method == "auto":
        if kind == "torch":
            return "integrated-gradients", []
        if kind == "gb-multiclass":
            return "permutation", [_GB_NOTE]
        if kind in ("tree", "native", "linear"):
            return kind, []
        if kind == "records":
            return "permutation", [
                "the estimator takes decoded records: explained model-agnostically in the codec space the "
                "Classifier takes"
            ]
        if kind == "pipeline":
            return "permutation", [
                "a pipeline with preprocessing: explained model-agnostically in the space the Classifier takes"
            ]
        return "permutation", []
    if method in _TORCH_METHODS:
        if kind != "torch":
            raise ValueError(
                f"`method` {method!r} needs a torch model (`torch_module`), got {_describe(model)}"
            )
        return method, []
    if method == "tree":
        if kind == "gb-multiclass":
            raise ValueError(f"`method` 'tree': {_GB_NOTE}")
        if kind != "tree":
            raise ValueError(f"`method` 'tree' needs a scikit-learn tree model, got {_describe(model)}")
        return "tree", []
    if method in ("native", "linear") and kind != method:
        what = "an xgboost or lightgbm model" if method == "native" else "a scikit-learn linear classifier"
        raise ValueError(f"`method` {method!r} needs {what}, got {_describe(model)}")
    return method, []


_GB_NOTE = (
    "shap's TreeExplainer refuses multiclass GradientBoostingClassifier: explained with the permutation "
    "explainer on predict_proba instead"
)
_SKLEARN_TREES = (
    "DecisionTreeClassifier",
    "ExtraTreeClassifier",
    "ExtraTreesClassifier",
    "GradientBoostingClassifier",
    "HistGradientBoostingClassifier",
    "RandomForestClassifier",
)


def _describe(model: Any) -> str:
    est = getattr(model, "estimator", None)
    return type(est if est is not None else model).__name__


def _model_kind(model: Any) -> str:
    """``torch``, ``tree``, ``gb-multiclass``, ``native``, ``linear``, ``records`` (the estimator takes decoded
    records), ``pipeline`` or ``black-box``."""
    module = getattr(model, "torch_module", None)
    if module is not None and type(module).__module__.startswith("torch"):
        return "torch"
    if module is not None:  # a torch.nn.Module subclass from user code
        torch_nn = _torch_nn()
        if torch_nn is not None and isinstance(module, torch_nn.Module):
            return "torch"
    est = getattr(model, "estimator", None)
    if est is None or not hasattr(model, "model_input"):
        return "black-box"
    if not _takes_codec_array(model):
        return "records"
    mod = type(est).__module__
    name = type(est).__name__
    if mod.startswith(("xgboost", "lightgbm")):
        return "native"
    if mod.startswith("sklearn.") and name in _SKLEARN_TREES:
        if name == "GradientBoostingClassifier" and len(getattr(est, "classes_", ())) > 2:
            return "gb-multiclass"
        return "tree"
    coef = getattr(est, "coef_", None)
    if mod.startswith(("sklearn.linear_model", "sklearn.svm")) and coef is not None and np.ndim(coef) == 2:
        return "linear"
    return "black-box" if not mod.startswith("sklearn.pipeline") else "pipeline"


def _takes_codec_array(model: Any) -> bool:
    """Whether the wrapped estimator sees the codec-space array itself (not decoded records)."""
    spec = model.input_spec
    try:
        probe = model.model_input(np.zeros((1, *spec.shape)))
    except Exception:  # a codec that cannot decode zeros: certainly not the plain array
        return False
    return isinstance(probe, np.ndarray) and math.prod(probe.shape[1:]) == spec.n_features


def _torch_nn() -> Any:
    try:
        import torch.nn
    except ImportError:
        return None
    return torch.nn
