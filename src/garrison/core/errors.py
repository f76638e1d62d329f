"""The one error tree of Garrison.

Every error Garrison raises on purpose derives from :class:`GarrisonError`. A builtin is mixed in only where the
error honestly is one (a bad config value *is* a ``ValueError``). Context travels as attributes, never only inside
the message, and no secret is ever part of a message.

::

    GarrisonError
    ├── ConfigError (ValueError)            a garrison.yaml / policy / triage problem: .path, .key, .line
    ├── InputError (ValueError)             a data or model input that cannot be used: .path, .field
    │   ├── DataError                       unreadable, empty or inconsistent dataset
    │   ├── ModelInputMismatchError         model and data disagree (shape, classes)
    │   ├── WrongKeyError                   the key or passphrase given does not open an encrypted file: .path
    │   └── RequestError                    a request to the guarded service is refused: .status (4xx), .code
    ├── ModelLoadError                      a model file or factory could not be loaded: .path
    │   └── UntrustedArtifactError          refusing to load code-bearing files (pickle, TorchScript, .pt2)
    │       └── ScanBlockedError            the model-file scan found a problem or could not finish
    ├── MissingDependencyError (ImportError) an optional extra is not installed: .extra
    ├── RemoteModelError                    a remote endpoint failed after retries: .url (never headers)
    ├── BudgetExceeded                      a cooperative time budget ran out: .budget_s
    ├── RegistryError (KeyError)            unknown or duplicate registry name: .name
    ├── ReportError (ValueError)            a report file is invalid or of an unknown schema version
    ├── IntegrityError                      protected bytes were altered, truncated, reordered or extended: .path
    └── StoreError                          the persistence layer failed
        └── WriterBusyError                 another process writes this audit-log worker's chain: .worker
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BudgetExceeded",
    "ConfigError",
    "DataError",
    "GarrisonError",
    "InputError",
    "IntegrityError",
    "MissingDependencyError",
    "ModelInputMismatchError",
    "ModelLoadError",
    "RegistryError",
    "RemoteModelError",
    "ReportError",
    "RequestError",
    "ScanBlockedError",
    "StoreError",
    "UntrustedArtifactError",
    "WriterBusyError",
    "WrongKeyError",
]


class GarrisonError(Exception):
    """Root of every error Garrison raises on purpose."""


def _where(path: str | Path | None, line: int | None, key: str | None) -> str:
    parts: list[str] = []
    if path is not None:
        parts.append(f"{path}:{line}" if line is not None else str(path))
    elif line is not None:
        parts.append(f"line {line}")
    if key:
        parts.append(f"key '{key}'")
    return ", ".join(parts)


class ConfigError(GarrisonError, ValueError):
    """A configuration, policy or triage file problem, naming the file, key and line."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        key: str | None = None,
        line: int | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.key = key
        self.line = line
        self.reason = message
        where = _where(path, line, key)
        super().__init__(f"{where}: {message}" if where else message)


class InputError(GarrisonError, ValueError):
    """An input (data file, array, record) that cannot be used as given."""

    def __init__(self, message: str, *, path: str | Path | None = None, field: str | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.field = field
        self.reason = message
        prefix = ", ".join(p for p in (self.path, f"field '{field}'" if field else None) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class DataError(InputError):
    """A dataset is unreadable, empty or internally inconsistent."""


class ModelInputMismatchError(InputError):
    """The model and the data disagree (input shape, number of classes, label values)."""


class WrongKeyError(InputError):
    """The key or passphrase given does not open this encrypted file (the data key does not unwrap)."""


class RequestError(InputError):
    """A request to the guarded inference service that is refused with HTTP ``status`` (4xx): ``code`` is a
    stable machine-readable reason, ``field`` names the offending field; the message never echoes the payload."""

    def __init__(
        self, message: str, *, status: int = 422, code: str = "invalid", field: str | None = None
    ) -> None:
        self.status = status
        self.code = code
        super().__init__(message, field=field)


class ModelLoadError(GarrisonError):
    """A model could not be loaded."""

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class UntrustedArtifactError(ModelLoadError):
    """Loading would execute code from an artifact that is neither scanned clean nor marked trusted."""


class ScanBlockedError(UntrustedArtifactError):
    """The model-file scan found code execution, an unknown callable or format abuse, or could not scan the file
    fully, so the file was not loaded."""


class MissingDependencyError(GarrisonError, ImportError):
    """An optional dependency is missing; the message names the extra that installs it."""

    def __init__(self, package: str, *, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(f"{package} is required for this; install it with: pip install 'garrison[{extra}]'")


class RemoteModelError(GarrisonError):
    """A remote model endpoint failed after all retries. Never carries request headers."""

    def __init__(self, message: str, *, url: str | None = None, status_code: int | None = None) -> None:
        self.url = url
        self.status_code = status_code
        super().__init__(f"{url}: {message}" if url else message)


class BudgetExceeded(GarrisonError):
    """A cooperative time budget ran out."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        super().__init__(f"time budget of {budget_s:g} s exceeded")


class RegistryError(GarrisonError, KeyError):
    """An unknown or duplicate name in one of Garrison's registries."""

    def __init__(self, message: str, *, name: str) -> None:
        self.name = name
        self.reason = message
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would quote the message
        return self.reason


class ReportError(GarrisonError, ValueError):
    """A report file is invalid, or of a schema version this Garrison cannot read."""


class IntegrityError(GarrisonError):
    """Authenticated bytes failed verification: altered, truncated, reordered or extended. Exit code 1."""

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class StoreError(GarrisonError):
    """The persistence layer failed."""


class WriterBusyError(StoreError):
    """Another process holds the audit-log journal of ``worker`` (each worker's chain has one writer)."""

    def __init__(self, message: str, *, worker: str) -> None:
        self.worker = worker
        super().__init__(message)
