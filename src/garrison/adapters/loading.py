"""Load models: :func:`load` for a model object behind the scanner, :func:`load_classifier` for a ``model:`` section.

Code-bearing files (pickle, joblib, full torch checkpoints, TorchScript, ``torch.export`` archives) load only after
``garrison.supplychain.scan_paths`` passes them (no incomplete item, no finding of high severity or worse), and
pickles then go through a restricted unpickler enforcing the same allowlist (defence in depth). A config that marks
the model ``trusted: true`` skips the scan for TorchScript and ``.pt2`` archives only. A ``factory:`` imports the
user's own code, which a CI gate may refuse (``allow_factory=False``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from garrison.adapters.base import Classifier, InputSpec
from garrison.adapters.sklearn_model import SklearnClassifier, load_skops, sniff_model_format
from garrison.core.config import ModelConfig
from garrison.core.errors import ConfigError, ModelLoadError, ScanBlockedError, UntrustedArtifactError
from garrison.core.severity import Severity
from garrison.supplychain.limits import ScanLimits
from garrison.supplychain.pickle_policy import Allowlist, default_allowlist
from garrison.supplychain.safe_loading import load_pickle, load_torch_checkpoint
from garrison.supplychain.scan import scan_paths

if TYPE_CHECKING:
    from garrison.data import FeatureCodec

__all__ = ["SCAN_BLOCKS_AT", "load", "load_classifier", "resolve_format"]

SCAN_BLOCKS_AT = Severity.HIGH
_PICKLE_FORMATS = ("pickle", "joblib", "sklearn", "torch-zip")


def load(
    path: str | Path,
    *,
    trusted: Sequence[str] = (),
    limits: ScanLimits | None = None,
) -> Any:
    """The model object in ``path`` (pickle, joblib, full torch checkpoint, skops, TorchScript, ``.pt2``), loaded
    only after the scan passes; ``trusted`` adds exact ``module.qualname`` names to the allowlist.

    Raises :class:`ScanBlockedError` naming what the scan found, or what it could not scan.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelLoadError("model file not found", path=p)
    allowlist = default_allowlist().extended(trusted)
    _require_clean_scan(p, allowlist, limits)
    fmt = sniff_model_format(p)
    if fmt in ("pickle", "joblib"):
        return load_pickle(p, allowlist=allowlist, kind=fmt)
    if fmt == "torch-zip" or (fmt == "unknown" and _is_legacy_torch(p)):
        return load_torch_checkpoint(p, allowlist=allowlist)
    if fmt == "skops":
        return load_skops(p, trusted=tuple(trusted))
    if fmt == "torchscript":
        from garrison.adapters.torch_model import load_torchscript

        return load_torchscript(p, trusted=True)  # the scan passed
    if fmt == "torch-export":
        from garrison.adapters.torch_model import load_torch_export

        return load_torch_export(p, trusted=True)
    raise ModelLoadError(
        f"`load` handles pickle, joblib, torch, skops and TorchScript files, not {fmt}", path=p
    )


def _require_clean_scan(path: Path, allowlist: Allowlist, limits: ScanLimits | None) -> None:
    result = scan_paths([path], limits=limits, allowlist=allowlist)
    if result.incomplete:
        item = result.incomplete[0]
        raise ScanBlockedError(
            f"not loaded: {item.location} could not be fully scanned ({item.reason})", path=path
        )
    blocking = [f for f in result.findings if f.severity >= SCAN_BLOCKS_AT]
    if blocking:
        first = blocking[0]
        more = f" and {len(blocking) - 1} more" if len(blocking) > 1 else ""
        raise ScanBlockedError(
            f"not loaded: the scan found {first.rule_id} {first.title.lower()} at {first.location}{more}",
            path=path,
        )


def _is_legacy_torch(path: Path) -> bool:
    from garrison.supplychain import Blob, detect_format

    with Blob.from_path(path, str(path)) as blob:
        return detect_format(blob) in ("torch-legacy", "torch-legacy-tar")


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
    sniffed = sniff_model_format(path)
    mapping = {"skops": "skops", "onnx": "onnx", "torchscript": "torchscript", "torch-export": "torch-export"}
    if sniffed in ("pickle", "joblib", "torch-zip"):
        return sniffed
    if sniffed == "unknown" and _is_legacy_torch(path):
        return "torch-zip"
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
    trusted_types: Sequence[str] = (),
) -> Classifier:
    """Load the configured model. ``sample_shape`` and ``codec`` come from the dataset it will be audited on;
    ``trusted_types`` extends the scanner's allowlist (``scan.allowlist`` in garrison.yaml)."""
    path = None if cfg.path is None else _resolve(cfg.path, base_dir)
    if path is not None and not path.is_file():
        raise ModelLoadError("model file not found", path=cfg.path)
    fmt = resolve_format(cfg, path)
    spec = InputSpec(tuple(sample_shape or ()), "float32", feature_names)
    if fmt in _PICKLE_FORMATS:
        assert path is not None
        obj = load(path, trusted=trusted_types)
        if _is_torch_module(obj):
            return _torch_classifier(obj, cfg, spec, sample_shape)
        return SklearnClassifier(obj, codec=codec, name=cfg.name, input_spec=spec if sample_shape else None)
    if fmt == "skops":
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
            load_factory,
            load_torch_export,
            load_torchscript,
            load_weights,
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
        elif not cfg.trusted:  # a code archive loads once the scan passes it
            assert path is not None
            module = load(path, trusted=trusted_types)
        elif fmt == "torchscript":
            assert path is not None
            module = load_torchscript(path, trusted=True)
        else:
            assert path is not None
            module = load_torch_export(path, trusted=True)
        return _torch_classifier(module, cfg, spec, sample_shape)
    raise ConfigError(f"unsupported model format {fmt!r}", key="model.format")


def _is_torch_module(obj: Any) -> bool:
    return any(c.__module__.startswith("torch.") and c.__name__ == "Module" for c in type(obj).__mro__)


def _torch_classifier(
    module: Any, cfg: ModelConfig, spec: InputSpec, sample_shape: tuple[int, ...] | None
) -> Classifier:
    from garrison.adapters.torch_model import TorchClassifier

    if not sample_shape:
        raise ConfigError("a torch model needs data (`data.test`) to know its input shape", key="data.test")
    return TorchClassifier(
        module,
        input_spec=spec,
        n_classes=cfg.n_classes,
        name=cfg.name,
        device=cfg.device,
        batch_size=cfg.batch_size,
    )


def _resolve(path: str, base_dir: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else base_dir / p


def _skops_trusted(path: Path) -> tuple[str, ...]:
    """For a model marked trusted, every type skops reports as untrusted is accepted."""
    import skops.io

    return tuple(skops.io.get_untrusted_types(file=path))
