"""Build a :class:`Classifier` from a ``model:`` config section.

Code-bearing files (pickle, joblib, TorchScript, ``torch.export`` archives) are never loaded unless the config marks
the model ``trusted: true``; pickle and joblib are refused until they pass the model-file scanner. A ``factory:``
imports the user's own code, which a CI gate may refuse (``allow_factory=False``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from garrison.adapters.base import Classifier, InputSpec
from garrison.core.config import ModelConfig
from garrison.core.errors import ConfigError, ModelLoadError, UntrustedArtifactError

if TYPE_CHECKING:
    from garrison.data import FeatureCodec

__all__ = ["load_classifier", "resolve_format"]


def resolve_format(cfg: ModelConfig, path: Path | None) -> str:
    """The model format: as configured, or sniffed from the file's content."""
    if cfg.format != "auto":
        return cfg.format
    if cfg.url:
        return "remote"
    if cfg.factory:
        return "torch"
    if path is None:
        raise ConfigError("`model.path` is required for this model format", key="model.path")
    from garrison.adapters.sklearn_model import sniff_model_format

    sniffed = sniff_model_format(path)
    mapping = {"skops": "skops", "onnx": "onnx", "torchscript": "torchscript", "torch-export": "torch-export"}
    if sniffed in ("pickle", "joblib", "torch-zip"):
        return sniffed
    if sniffed not in mapping:
        raise ModelLoadError(
            "cannot tell the model format from the file's content; set `model.format` "
            "(skops, onnx, torchscript, torch-export, or use `model.factory` with weights)",
            path=path,
        )
    return mapping[sniffed]


def load_classifier(
    cfg: ModelConfig,
    *,
    base_dir: Path = Path(),
    sample_shape: tuple[int, ...] | None = None,
    codec: FeatureCodec | None = None,
    feature_names: tuple[str, ...] | None = None,
    allow_factory: bool = True,
) -> Classifier:
    """Load the configured model. ``sample_shape`` and ``codec`` come from the dataset it will be audited on."""
    path = None if cfg.path is None else _resolve(cfg.path, base_dir)
    if path is not None and not path.is_file():
        raise ModelLoadError("model file not found", path=cfg.path)
    fmt = resolve_format(cfg, path)
    spec = InputSpec(tuple(sample_shape or ()), "float32", feature_names)
    if fmt in ("pickle", "joblib", "sklearn", "torch-zip"):
        from garrison.adapters.sklearn_model import refuse_pickle

        assert path is not None
        refuse_pickle(path)
    if fmt == "skops":
        from garrison.adapters.sklearn_model import SklearnClassifier, load_skops

        assert path is not None
        estimator = load_skops(path, trusted=_skops_trusted(path) if cfg.trusted else ())
        return SklearnClassifier(
            estimator, codec=codec, name=cfg.name, input_spec=spec if sample_shape else None
        )
    if fmt == "onnx":
        from garrison.adapters.onnx_model import OnnxClassifier

        assert path is not None
        return OnnxClassifier(
            path,
            name=cfg.name,
            batch_size=cfg.batch_size,
            input_spec=spec if sample_shape else None,
            n_classes=cfg.n_classes,
        )
    if fmt == "remote":
        from garrison.adapters.remote import RemoteClassifier

        if not cfg.url:
            raise ConfigError("`model.url` is required for a remote model", key="model.url")
        if cfg.n_classes is None:
            raise ConfigError("`model.n_classes` is required for a remote model", key="model.n_classes")
        return RemoteClassifier(
            cfg.url,
            n_classes=cfg.n_classes,
            input_spec=spec,
            name=cfg.name,
            headers=dict(cfg.headers),
            timeout_s=cfg.timeout_s,
            retries=cfg.retries,
            batch_size=cfg.batch_size,
        )
    if fmt in ("torch", "torchscript", "torch-export"):
        from garrison.adapters.torch_model import (
            TorchClassifier,
            load_factory,
            load_torch_export,
            load_torchscript,
            load_weights,
        )

        if not sample_shape:
            raise ConfigError(
                "a torch model needs data (`data.test`) to know its input shape", key="data.test"
            )
        if fmt == "torch":
            if not cfg.factory:
                raise ConfigError("`model.factory` is required for a torch model", key="model.factory")
            if not allow_factory:
                raise UntrustedArtifactError(
                    f"`model.factory` imports code ({cfg.factory}); refused in --ci mode without --allow-factory"
                )
            module = load_factory(cfg.factory)()
            if cfg.weights:
                module = load_weights(module, _resolve(cfg.weights, base_dir))
        elif fmt == "torchscript":
            assert path is not None
            module = load_torchscript(path, trusted=cfg.trusted)
        else:
            assert path is not None
            module = load_torch_export(path, trusted=cfg.trusted)
        return TorchClassifier(
            module,
            input_spec=spec,
            n_classes=cfg.n_classes,
            name=cfg.name,
            device=cfg.device,
            batch_size=cfg.batch_size,
        )
    raise ConfigError(f"unsupported model format {fmt!r}", key="model.format")


def _resolve(path: str, base_dir: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else base_dir / p


def _skops_trusted(path: Path) -> tuple[str, ...]:
    """For a model marked trusted, every type skops reports as untrusted is accepted."""
    import skops.io

    return tuple(skops.io.get_untrusted_types(file=path))
