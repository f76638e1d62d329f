"""A model behind a JSON HTTP endpoint, audited as a black box.

Each batch of up to ``batch_size`` samples is one ``POST`` of ``{"inputs": [sample, ...]}`` (every sample a nested
list in the input spec's shape); the endpoint answers ``{"probabilities": [[p0, p1, ...], ...]}``. The keys are
configurable. JSON has no NaN or infinity, so non-finite input values are sent as ``null``: an endpoint that
validates its input is expected to reject them with a 4xx, which is itself worth auditing.

Connection errors, timeouts, 429 and 5xx answers are retried with exponential backoff (deterministic jitter,
``Retry-After`` honoured up to 30 s); any other non-2xx answer fails at once. Header values (auth tokens) are
never part of an exception message, a repr or a log record, and neither are credentials or the query string of
the URL. The HTTP client ignores proxy and netrc settings from the environment; pass a ``transport`` to route it.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx
import numpy as np

from garrison.adapters.base import BaseClassifier, InputSpec
from garrison.core.errors import ModelInputMismatchError, RemoteModelError

__all__ = ["RemoteClassifier"]

logger = logging.getLogger(__name__)

_MAX_RETRY_AFTER_S = 30.0
_REDACTED = "[redacted]"
_MIN_SECRET_PART = 8  # words of a header value this long (the token in "Bearer <token>") are redacted too


class RemoteClassifier(BaseClassifier):
    """A classifier served over HTTP. Reuses one connection pool; call :meth:`close` or use it as a context manager.

    ``retries`` is the number of attempts after the first one.
    """

    def __init__(
        self,
        url: str,
        *,
        n_classes: int,
        input_spec: InputSpec,
        name: str = "remote-model",
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        retries: int = 3,
        batch_size: int = 256,
        backoff_s: float = 0.2,
        transport: httpx.BaseTransport | None = None,
        input_key: str = "inputs",
        output_key: str = "probabilities",
    ) -> None:
        headers = dict(headers or {})
        for key, value in headers.items():
            if not isinstance(value, str) or not value.isascii() or any(c in value for c in "\r\n\0"):
                raise ValueError(f"header {key!r} must be a single-line ASCII string (value not shown)")
        parsed = httpx.URL(url)
        self._display_url = str(parsed.copy_with(username=None, password=None, query=None, fragment=None))
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"`url` must be an http(s) URL, got {self._display_url!r}")
        if n_classes < 2:
            raise ValueError(f"`n_classes` must be >= 2, got {n_classes!r}")
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1, got {batch_size!r}")
        if retries < 0:
            raise ValueError(f"`retries` must be >= 0, got {retries!r}")
        if not timeout_s > 0:
            raise ValueError(f"`timeout_s` must be > 0, got {timeout_s!r}")
        if backoff_s < 0:
            raise ValueError(f"`backoff_s` must be >= 0, got {backoff_s!r}")
        super().__init__(name=name, n_classes=n_classes, input_spec=input_spec)
        self._url = url
        self._secrets = _secret_parts(headers.values())
        self._timeout_s = timeout_s
        self._retries = retries
        self._batch_size = batch_size
        self._backoff_s = backoff_s
        self._input_key = input_key
        self._output_key = output_key
        self._jitter = random.Random(0)
        self._client = httpx.Client(
            headers=headers, timeout=timeout_s, transport=transport, trust_env=False, follow_redirects=False
        )

    @property
    def url(self) -> str:
        """The endpoint without credentials, query string or fragment: safe to show."""
        return self._display_url

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` as float64, one request per batch."""
        if self._client.is_closed:
            raise RemoteModelError("the classifier has been closed", url=self.url)
        x = self.input_spec.conform(x)
        parts = [self._request(x[s : s + self._batch_size]) for s in range(0, len(x), self._batch_size)]
        if not parts:
            return np.zeros((0, self.n_classes))
        return np.concatenate(parts)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> RemoteClassifier:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteClassifier(name={self.name!r}, url={self.url!r}, n_classes={self.n_classes})"

    def _body(self, chunk: np.ndarray) -> bytes:
        if chunk.dtype.kind in "fc" and not np.isfinite(chunk).all():
            values = chunk.astype(np.float64).astype(object)
            values[~np.isfinite(chunk)] = None
            rows = values.tolist()
        elif chunk.dtype.kind in "biuf":
            rows = chunk.tolist()
        else:
            raise ModelInputMismatchError(f"inputs must be numeric to send as JSON, got dtype {chunk.dtype}")
        return json.dumps({self._input_key: rows}, allow_nan=False, separators=(",", ":")).encode()

    def _request(self, chunk: np.ndarray) -> np.ndarray:
        body = self._body(chunk)
        attempts = self._retries + 1
        reason, status, retry_after = "", None, None
        for attempt in range(attempts):
            if attempt:
                delay = self._delay(attempt, retry_after)
                logger.info(
                    "retrying %s in %.2f s after %s (attempt %d of %d)",
                    self.url,
                    delay,
                    reason,
                    attempt + 1,
                    attempts,
                )
                time.sleep(delay)
            try:
                response = self._client.post(
                    self._url, content=body, headers={"Content-Type": "application/json"}
                )
            except httpx.UnsupportedProtocol as exc:
                raise RemoteModelError(self._redact(f"unsupported URL: {exc}"), url=self.url) from None
            except httpx.TimeoutException:
                reason, status, retry_after = f"a timeout ({self._timeout_s:g} s)", None, None
                continue
            except httpx.TransportError as exc:
                reason, status, retry_after = (
                    self._redact(f"a connection error ({type(exc).__name__})"),
                    None,
                    None,
                )
                continue
            if response.status_code == 429 or response.status_code >= 500:
                reason, status = f"HTTP {response.status_code}", response.status_code
                retry_after = _retry_after(response)
                continue
            if not 200 <= response.status_code < 300:
                raise RemoteModelError(
                    f"HTTP {response.status_code}, not retried{self._excerpt(response)}",
                    url=self.url,
                    status_code=response.status_code,
                )
            return self._parse(response, len(chunk))
        raise RemoteModelError(
            f"failed after {attempts} attempt(s), last with {reason}", url=self.url, status_code=status
        )

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        delay = self._backoff_s * 2 ** (attempt - 1) * (1.0 + 0.25 * self._jitter.random())
        if retry_after is not None:
            delay = max(delay, min(retry_after, _MAX_RETRY_AFTER_S))
        return delay

    def _parse(self, response: httpx.Response, n: int) -> np.ndarray:
        def fail(problem: str) -> RemoteModelError:
            return RemoteModelError(
                f"bad response: {problem}", url=self.url, status_code=response.status_code
            )

        try:
            payload = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            raise fail("not JSON") from None
        if not isinstance(payload, dict) or self._output_key not in payload:
            raise fail(f"no {self._output_key!r} key in the JSON object")
        rows = payload[self._output_key]
        k = self.n_classes
        well_formed = (
            isinstance(rows, list)
            and len(rows) == n
            and all(isinstance(row, list) and len(row) == k for row in rows)
            and all(isinstance(v, int | float) and not isinstance(v, bool) for row in rows for v in row)
        )
        if not well_formed:
            raise fail(f"{self._output_key!r} must be a list of {n} rows of {k} numbers")
        return np.array(rows, dtype=np.float64).reshape(n, k)

    def _excerpt(self, response: httpx.Response, limit: int = 200) -> str:
        text = " ".join(response.content[: limit * 4].decode("utf-8", "replace").split())
        text = self._redact(text)
        if not text:
            return ""
        return f": {text[:limit]}{'...' if len(text) > limit else ''}"

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        return text


def _secret_parts(values: Any) -> tuple[str, ...]:
    parts: set[str] = set()
    for value in values:
        if value:
            parts.add(value)
            parts.update(p for p in value.split() if len(p) >= _MIN_SECRET_PART)
    return tuple(
        sorted(parts, key=len, reverse=True)
    )  # longest first, so a whole value goes before its parts


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return None  # absent, or an HTTP date: plain backoff then
    return seconds if seconds >= 0 else None
