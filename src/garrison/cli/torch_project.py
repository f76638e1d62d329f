"""What `garrison harden` and `garrison train` share: a config-defined torch model and its datasets as arrays."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from garrison.adapters.base import Classifier
    from garrison.core.config import GarrisonConfig

__all__ = ["label_arrays", "load_torch_project"]


def load_torch_project(cfg: GarrisonConfig, *, command: str, need_test: bool) -> tuple[Classifier, Any, Any]:
    """The config's torch classifier (``model.factory`` + weights), its train dataset and its test dataset (``None``
    when absent and not ``need_test``); a :class:`ConfigError` naming ``command`` otherwise."""
    from garrison.adapters.loading import load_classifier, resolve_format
    from garrison.core.errors import ConfigError
    from garrison.data import load_datasets

    needs_torch = f"garrison {command} needs a torch model (model.factory + weights)"
    if cfg.model is None:
        raise ConfigError(needs_torch, path=cfg.source, key="model")
    model_path = cfg.resolve(cfg.model.path) if cfg.model.path else None
    if not cfg.model.factory or resolve_format(cfg.model, model_path) != "torch":
        raise ConfigError(needs_torch, path=cfg.source, key="model.factory")
    required = ("train", "test") if need_test else ("train",)
    sources = {"train": cfg.data.train, "test": cfg.data.test}
    for role in required:
        if sources[role] is None:
            raise ConfigError(f"garrison {command} needs `data.{role}`", path=cfg.source, key=f"data.{role}")
    present = {role: src for role, src in sources.items() if src is not None}
    datasets = load_datasets(present, base_dir=cfg.base_dir, overrides=cfg.data.features)
    train, test = datasets["train"], datasets.get("test")
    shaped = test if need_test else train
    classifier = load_classifier(
        cfg.model,
        base_dir=cfg.base_dir,
        sample_shape=tuple(shaped.x.shape[1:]),
        codec=shaped.codec,
        feature_names=shaped.schema.names(),
    )
    return classifier, train, test


def label_arrays(dataset: Any, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x as float32, y as int64)`` of a dataset whose labels are class indices ``0..n_classes-1``."""
    import numpy as np

    from garrison.core.errors import DataError

    y = np.asarray(dataset.y)
    if dataset.y is None or not np.issubdtype(y.dtype, np.integer):
        raise DataError(
            "a torch model is trained on integer class labels 0..n_classes-1", path=dataset.path, field="y"
        )
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(
            f"labels must lie in [0, {n_classes}), got {y.min()}..{y.max()}", path=dataset.path, field="y"
        )
    return np.asarray(dataset.x, dtype=np.float32), y.astype(np.int64)
