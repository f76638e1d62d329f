"""Loading pickle-based models only after the scanner passes them, through an unpickler that enforces the same
allowlist (defence in depth: a gap in the analysis still meets the restricted ``find_class``).

The file is read once; the bytes that were analysed are the bytes that are loaded, so a file swapped between
the scan and the load changes nothing.
"""

from __future__ import annotations

import io
import pickle
import types
import zipfile
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from garrison.core.errors import InputError, MissingDependencyError, UntrustedArtifactError
from garrison.supplychain.pickle_machine import PickleAnalysis, analyze_pickle
from garrison.supplychain.pickle_policy import Allowlist, Verdict, default_allowlist

__all__ = ["RestrictedUnpickler", "load_pickle", "load_torch_checkpoint", "restricted_pickle_module"]

_KINDS = ("auto", "pickle", "joblib")
_JOBLIB_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
_MAX_SHOWN = 5


def load_pickle(
    path: str | Path,
    *,
    allowlist: Allowlist | None = None,
    trusted: Sequence[str] = (),
    kind: str = "auto",
) -> Any:
    """Load a pickle or joblib file (e.g. a scikit-learn model) once the scan finds nothing dangerous or unknown.

    ``trusted`` names (``"pkg.mod.Class"``) extend the allowlist for this load. ``kind`` is ``"auto"`` (joblib
    when the stream uses joblib's array wrapper or is compressed), ``"pickle"`` or ``"joblib"``. Raises
    UntrustedArtifactError naming the offending call chains; the object is built by a restricted unpickler.
    """
    if kind not in _KINDS:
        raise InputError(f"`kind` must be one of {', '.join(_KINDS)}, got {kind!r}", path=path)
    path = Path(path)
    rules = (allowlist or default_allowlist()).extended(trusted)
    raw = _read(path)
    data = raw if kind == "pickle" else _joblib_decompressed(raw, path)
    use_joblib = kind == "joblib" or data is not raw
    analysis = analyze_pickle(data, allowlist=rules, joblib=use_joblib, max_pickles=1)
    if (
        not use_joblib
        and kind == "auto"
        and any((c.module, c.qualname) == _JOBLIB_WRAPPER for c in analysis.calls)
    ):
        use_joblib = True
        analysis = analyze_pickle(data, allowlist=rules, joblib=True, max_pickles=1)
    refuse_unless_clean(analysis, path)
    if use_joblib:
        return _restricted_joblib_load(data, path, rules)
    return RestrictedUnpickler(io.BytesIO(data), allowlist=rules).load()


def load_torch_checkpoint(
    path: str | Path,
    *,
    allowlist: Allowlist | None = None,
    trusted: Sequence[str] = (),
    map_location: str | None = "cpu",
) -> Any:
    """Load a full torch checkpoint (``torch.save`` of modules, optimizers...) once every pickle in it scans clean,
    with ``torch.load(weights_only=False)`` driven by a restricted pickle module."""
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("torch", extra="torch") from exc
    path = Path(path)
    rules = (allowlist or default_allowlist()).extended(trusted)
    data = _read(path)
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if any(name.split("/", 2)[1:2] == ["code"] for name in names):
                raise UntrustedArtifactError("a TorchScript archive is code, not a checkpoint", path=path)
            pickles = [name for name in names if name.endswith(".pkl")]
            if not pickles:
                raise UntrustedArtifactError("no pickle found in the torch archive", path=path)
            for name in pickles:
                refuse_unless_clean(analyze_pickle(archive.read(name), allowlist=rules), path, member=name)
    else:
        refuse_unless_clean(analyze_pickle(data, allowlist=rules, max_pickles=5), path)
    module = restricted_pickle_module(rules)
    return torch.load(io.BytesIO(data), map_location=map_location, weights_only=False, pickle_module=module)


def refuse_unless_clean(analysis: PickleAnalysis, path: Path, *, member: str | None = None) -> None:
    """Raise UntrustedArtifactError unless the analysis found only allowlisted calls and parsed to the end."""
    where = f" (member {member})" if member else ""
    offending = [c for c in analysis.calls if c.verdict is not Verdict.SAFE]
    if offending:
        shown = "; ".join(f"{c.chain} [{c.verdict.value}: {c.reason}]" for c in offending[:_MAX_SHOWN])
        more = f" and {len(offending) - _MAX_SHOWN} more" if len(offending) > _MAX_SHOWN else ""
        raise UntrustedArtifactError(f"refusing to load{where}: it would call {shown}{more}", path=path)
    if analysis.limit is not None:
        raise UntrustedArtifactError(
            f"refusing to load{where}: the scan stopped at the {analysis.limit} limit", path=path
        )
    if analysis.errors or analysis.n_pickles == 0:
        problem = analysis.errors[0] if analysis.errors else "no complete pickle"
        raise UntrustedArtifactError(
            f"refusing to load{where}: the stream is malformed: {problem}", path=path
        )


class RestrictedUnpickler(pickle.Unpickler):
    """A ``pickle.Unpickler`` whose ``find_class`` only returns allowlisted globals.

    ``builtins.getattr`` is replaced by a version that reaches only allowlisted attributes of allowlisted classes
    (how protocols < 4 pickle nested names), and ``torch.storage._load_from_bytes`` by one that loads through this
    same restricted machinery.
    """

    allowlist: Allowlist | None = None

    def __init__(self, file: Any, *, allowlist: Allowlist | None = None, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        rules = allowlist or type(self).allowlist or default_allowlist()
        self._rules = rules

    def find_class(self, module: str, name: str) -> Any:
        return restricted_find_class(self._rules, module, name, super().find_class)


def restricted_find_class(rules: Allowlist, module: str, name: str, find: Callable[[str, str], Any]) -> Any:
    """The allowlist check shared by every restricted unpickler; ``find`` is the unrestricted lookup.

    Python 2 names are judged by what they map to at protocols < 3 (the C unpickler does not expose the
    protocol; at 3 and above such a name does not import at all).
    """
    resolved = (module, name)
    if resolved in NAME_MAPPING:
        resolved = NAME_MAPPING[resolved]
    elif module in IMPORT_MAPPING:
        resolved = (IMPORT_MAPPING[module], name)
    if resolved == ("builtins", "getattr"):
        return partial(_allowlisted_getattr, rules)
    if resolved == ("torch.storage", "_load_from_bytes"):
        return partial(_torch_load_from_bytes, rules)
    verdict, reason = rules.classify(*resolved)
    if verdict is not Verdict.SAFE:
        raise UntrustedArtifactError(
            f"the restricted unpickler refuses {resolved[0]}.{resolved[1]}: {reason}"
        )
    return find(module, name)


def restricted_pickle_module(allowlist: Allowlist) -> types.ModuleType:
    """A module-like object with ``Unpickler``, ``load`` and ``loads`` bound to ``allowlist`` (for
    ``torch.load(pickle_module=...)``)."""
    module = types.ModuleType("garrison_restricted_pickle")
    unpickler = type("Unpickler", (RestrictedUnpickler,), {"allowlist": allowlist})

    def load(file: Any, **kwargs: Any) -> Any:
        return unpickler(file, **kwargs).load()

    def loads(data: bytes, **kwargs: Any) -> Any:
        return unpickler(io.BytesIO(data), **kwargs).load()

    module.Unpickler = unpickler  # type: ignore[attr-defined]
    module.load = load  # type: ignore[attr-defined]
    module.loads = loads  # type: ignore[attr-defined]
    module.UnpicklingError = pickle.UnpicklingError  # type: ignore[attr-defined]
    return module


def _allowlisted_getattr(rules: Allowlist, obj: Any, name: str) -> Any:
    if isinstance(obj, type | types.FunctionType | types.BuiltinFunctionType) and isinstance(name, str):
        owner = (getattr(obj, "__module__", None), getattr(obj, "__qualname__", None))
        if isinstance(owner[0], str) and isinstance(owner[1], str):
            verdict, _ = rules.classify(owner[0], f"{owner[1]}.{name}")
            if verdict is Verdict.SAFE:
                return getattr(obj, name)
    raise UntrustedArtifactError(f"the restricted unpickler refuses getattr(..., {name!r})")


def _torch_load_from_bytes(rules: Allowlist, payload: bytes) -> Any:
    import torch

    return torch.load(io.BytesIO(payload), weights_only=False, pickle_module=restricted_pickle_module(rules))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the model file: {exc.strerror or exc}", path=path) from exc


def _joblib_decompressed(raw: bytes, path: Path) -> bytes:
    """The pickle stream inside a joblib file compressed with zlib, gzip, bz2, xz or lzma; ``raw`` itself when
    it is not compressed (or joblib is not installed)."""
    try:
        from joblib.numpy_pickle_utils import _detect_compressor
    except ImportError:
        return raw
    compressor = _detect_compressor(io.BytesIO(raw))
    if compressor in ("not-compressed", "compat"):
        return raw
    from joblib.numpy_pickle import _validate_fileobject_and_memmap

    with _validate_fileobject_and_memmap(io.BytesIO(raw), str(path), None) as (stream, _):
        return stream.read()


def _restricted_joblib_load(data: bytes, path: Path, rules: Allowlist) -> Any:
    try:
        from joblib.numpy_pickle import NumpyUnpickler
    except ImportError as exc:
        raise MissingDependencyError("joblib", extra="sklearn") from exc

    class _RestrictedNumpyUnpickler(NumpyUnpickler):  # type: ignore[misc]
        def find_class(self, module: str, name: str) -> Any:
            return restricted_find_class(rules, module, name, super().find_class)

    return _RestrictedNumpyUnpickler(str(path), io.BytesIO(data), True).load()
