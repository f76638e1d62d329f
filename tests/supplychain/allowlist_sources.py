"""Where the shipped pickle allowlists come from, computed from the installed libraries.

``python tests/supplychain/allowlist_sources.py`` rewrites the generated files in
``src/garrison/supplychain/allowlists/`` (torch's ``weights_only`` set, torch layers/optimizers/schedulers, numpy
scalar and dtype classes, scipy sparse classes, scikit-learn estimators plus the globals their fitted pickles use).
Tests compare the committed files with what the installed libraries give.
"""

from __future__ import annotations

import inspect
import pickle
import pkgutil
import sys
import warnings
from importlib import import_module
from pathlib import Path

ALLOWLISTS = Path(__file__).resolve().parents[2] / "src" / "garrison" / "supplychain" / "allowlists"


def split(name: str) -> str:
    module, _, qualname = name.rpartition(".")
    return f"{module}:{qualname}"


def torch_weights_only() -> set[str]:
    """What ``torch.load(weights_only=True)`` allows by default, as ``module:qualname`` lines."""
    from torch import _weights_only_unpickler

    return {split(name) for name in _weights_only_unpickler._get_allowed_globals()}


_NOT_TENSOR_MATH = frozenset({"handle_torch_function", "has_torch_function", "has_torch_function_unary",
                               "has_torch_function_variadic", "boolean_dispatch"})  # fmt: skip


def torch_modules() -> set[str]:
    """torch's own layers, losses, containers, optimizers and LR schedulers, and nn.functional functions."""
    import torch
    from torch import nn, optim

    out: set[str] = set()
    packages = [("torch.nn.modules", nn.Module), ("torch.optim", optim.Optimizer)]
    for package, base in packages:
        pkg = import_module(package)
        names = [package] + [f"{package}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__) if not m.ispkg]
        for modname in names:
            module = import_module(modname)
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if obj.__module__ == modname and issubclass(obj, base) and "<" not in obj.__qualname__:
                    out.add(f"{modname}:{obj.__qualname__}")
    from torch.optim import lr_scheduler

    for _, obj in inspect.getmembers(lr_scheduler, inspect.isclass):
        if obj.__module__ == "torch.optim.lr_scheduler":
            out.add(f"torch.optim.lr_scheduler:{obj.__qualname__}")
    for name, obj in inspect.getmembers(nn.functional, inspect.isfunction):
        if (
            obj.__module__ == "torch.nn.functional"
            and not name.startswith("_")
            and name not in _NOT_TENSOR_MATH
        ):
            out.add(f"torch.nn.functional:{name}")
    for extra in ("torch.nn.parameter.Parameter", "torch.nn.parameter.Buffer", "torch.nn.parameter.UninitializedParameter",
                  "torch.nn.parameter.UninitializedBuffer", "torch.storage._load_from_bytes"):  # fmt: skip
        out.add(split(extra))
    del torch
    return out


def numpy_names() -> set[str]:
    import numpy as np

    out = {
        f"numpy:{n}"
        for n in dir(np)
        if isinstance(getattr(np, n, None), type) and issubclass(getattr(np, n), np.generic)
    }
    out |= {f"numpy.dtypes:{n}" for n in dir(np.dtypes) if isinstance(getattr(np.dtypes, n), type)}
    return out


def scipy_names() -> set[str]:
    import scipy.sparse as sp

    out = set()
    for name in dir(sp):
        obj = getattr(sp, name)
        if (
            isinstance(obj, type)
            and (name.endswith(("_matrix", "_array")))
            and obj.__module__.startswith("scipy.sparse")
        ):
            out.add(f"{obj.__module__}:{obj.__qualname__}")
    return out


def sklearn_estimators() -> set[str]:
    import sklearn.experimental.enable_halving_search_cv  # noqa: F401  (lists the Halving*SearchCV estimators)
    from sklearn.utils import all_estimators

    return {f"{cls.__module__}:{cls.__qualname__}" for _, cls in all_estimators()}


_SKLEARN_INTERNALS = (
    "sklearn._loss.loss", "sklearn._loss.link", "sklearn._loss._loss", "sklearn.model_selection._split",
    "sklearn.metrics._dist_metrics", "sklearn.tree._tree", "sklearn.tree._criterion", "sklearn.tree._splitter",
    "sklearn.neighbors._kd_tree", "sklearn.neighbors._ball_tree", "sklearn.ensemble._hist_gradient_boosting.predictor",
    "sklearn.ensemble._hist_gradient_boosting.binning", "sklearn.metrics._scorer", "sklearn.utils._bunch",
    "sklearn.gaussian_process.kernels", "sklearn.neural_network._stochastic_optimizers",
    "sklearn.utils._metadata_requests", "sklearn.calibration", "sklearn.multiclass", "sklearn._loss._loss",
    "sklearn.utils._random", "sklearn.svm._classes", "sklearn.ensemble._gb",
)  # fmt: skip


def sklearn_internals() -> set[str]:
    """Classes (and Cython unpickle helpers) of the sklearn modules whose objects fitted estimators hold, and the
    public metric functions scorers refer to."""
    import sklearn.metrics

    out: set[str] = set()
    for modname in _SKLEARN_INTERNALS:
        module = import_module(modname)
        for name, obj in vars(module).items():
            if isinstance(obj, type) and obj.__module__ == modname and "<" not in obj.__qualname__:
                out.add(f"{modname}:{obj.__qualname__}")
            elif name.startswith("__pyx_unpickle_") or (name == "newObj" and callable(obj)):
                out.add(f"{modname}:{name}")
    for name, obj in vars(sklearn.metrics).items():
        if (
            inspect.isfunction(obj)
            and not name.startswith("_")
            and name.endswith(("_score", "_error", "_loss"))
        ):
            out.add(f"{obj.__module__}:{obj.__qualname__}")
    return out


def write(name: str, header: str, lines: set[str]) -> None:
    text = (
        f"# {header}\n# Generated by tests/supplychain/allowlist_sources.py; exact module:qualname pairs.\n"
    )
    (ALLOWLISTS / name).write_text(text + "".join(f"{line}\n" for line in sorted(lines)), encoding="utf-8")


def sklearn_pickle_globals() -> set[str]:
    """sklearn.* globals that pickles of every estimator fitted on tiny data import."""
    import numpy as np
    import sklearn.experimental.enable_halving_search_cv  # noqa: F401  (lists the Halving*SearchCV estimators)
    from sklearn.datasets import make_classification, make_regression
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.utils import all_estimators

    from garrison.supplychain.pickle_machine import analyze_pickle
    from garrison.supplychain.pickle_policy import Allowlist

    xc, yc = make_classification(n_samples=40, n_features=6, n_informative=3, random_state=0)
    xr, yr = make_regression(n_samples=40, n_features=6, random_state=0)
    found: set[str] = set()
    for name, cls in all_estimators():
        try:
            est = cls()
        except TypeError:
            try:
                est = cls(LogisticRegression() if "Classifier" in name else Ridge())
            except Exception:
                continue
        for x, y in ((xc, yc), (np.abs(xc), yc), (xr, yr), (xc, None)):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est.fit(x) if y is None else est.fit(x, y)
                break
            except Exception:
                continue
        for protocol in (2, 5):
            for call in analyze_pickle(
                pickle.dumps(est, protocol=protocol), allowlist=Allowlist(frozenset())
            ).calls:
                if call.module.startswith("sklearn."):
                    found.add(f"{call.module}:{call.qualname}")
    return found


def main() -> None:
    write(
        "torch_weights_only.txt", "What torch.load(weights_only=True) allows by default", torch_weights_only()
    )
    write(
        "torch_modules.txt",
        "torch layers, losses, containers, optimizers, LR schedulers and nn.functional",
        torch_modules(),
    )
    sklearn = sklearn_estimators() | sklearn_internals() | sklearn_pickle_globals()
    write("sklearn.txt", "scikit-learn estimators (all_estimators), the internals their fitted pickles hold, metric "
          "functions", sklearn)  # fmt: skip
    sys.stdout.write(
        "torch and sklearn lists written; numpy/scipy names to merge by hand into their files:\n"
    )
    for line in sorted(numpy_names() | scipy_names()):
        sys.stdout.write(line + "\n")


if __name__ == "__main__":
    main()
