"""The guarded inference service: ``garrison serve --config garrison.yaml``.

:func:`build_service` builds everything from a config; :func:`create_app` serves a :class:`GuardedService` you
assembled yourself (tests, embedding). Needs the ``serve`` extra (FastAPI, uvicorn, prometheus-client).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from garrison.serve.limits import RateLimiter, Throttle
from garrison.serve.settings import ServeSettings
from garrison.serve.validation import RequestValidator, ValidatedBatch, parse_json

if TYPE_CHECKING:
    from garrison.serve.app import GuardedService, create_app
    from garrison.serve.loading import ServiceBundle, build_service

__all__ = [
    "GuardedService",
    "RateLimiter",
    "RequestValidator",
    "ServeSettings",
    "ServiceBundle",
    "Throttle",
    "ValidatedBatch",
    "build_service",
    "create_app",
    "parse_json",
]

_LAZY = {
    "GuardedService": "garrison.serve.app",
    "create_app": "garrison.serve.app",
    "ServiceBundle": "garrison.serve.loading",
    "build_service": "garrison.serve.loading",
}


def __getattr__(name: str) -> Any:  # FastAPI is imported only when the app is
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'garrison.serve' has no attribute {name!r}")
    import importlib

    from garrison.core.optional import import_optional

    import_optional("fastapi", extra="serve")
    return getattr(importlib.import_module(module), name)
