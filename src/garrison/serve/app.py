"""The guarded inference service: one FastAPI app whose predict path does every guard in one handler.

``create_app(service)`` serves ``POST /v1/predict`` and ``POST /v1/explain`` (batches), ``GET /healthz`` (no key),
``GET /readyz``, ``GET /metrics`` (Prometheus; ``admin`` scope) and ``GET /v1/model``. Each request, in order:
API key (``Authorization: Bearer <key>`` or ``X-API-Key``) → scope → blocked key → rate limit → body size →
strict JSON → schema validation → model → detectors → audit-log entry committed → response. The guards run inline
in the route, not as middleware and dependencies: FastAPI's per-layer machinery costs far more than the checks
(the anchor measured pydantic + key + Prometheus middleware at 0.70× a bare endpoint), so they are one layer.

Every refusal is a 4xx JSON ``{"error": {"code", "message", "field"}}`` that never echoes the payload; FastAPI's
own validation errors and unknown routes get the same shape, and an unexpected failure is a 500 without
details (logged by the caller's logger).
The module imports FastAPI at the top (the ``serve`` extra): FastAPI resolves the endpoints' annotations from
this module's globals.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.to_thread
import numpy as np
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]

from garrison.core.errors import RequestError
from garrison.serve.admin import add_admin_routes
from garrison.serve.background import BackgroundHooks
from garrison.serve.feedback import FeedbackTracker
from garrison.serve.limits import RateLimiter
from garrison.serve.metrics import ServiceMetrics
from garrison.serve.settings import ServeSettings
from garrison.serve.validation import RequestValidator, ValidatedBatch, parse_json

if TYPE_CHECKING:
    from garrison.adapters.base import Classifier
    from garrison.data.schema import Schema

__all__ = ["AuditSink", "Authenticator", "GuardedService", "KeyIdentity", "create_app"]

SCOPES = ("predict", "explain", "admin")


class KeyIdentity(Protocol):
    """What the service needs to know of an authenticated key (:class:`garrison.store.KeyInfo`)."""

    @property
    def id(self) -> str: ...

    def allows(self, scope: str) -> bool: ...


class Authenticator(Protocol):
    def authenticate(self, secret: str) -> KeyIdentity | None: ...


class AuditSink(Protocol):
    def append_many(self, items: list[tuple[str, str, Mapping[str, Any] | None]]) -> list[Any]: ...


RowHook = Callable[[str, np.ndarray, np.ndarray, float], None]


@dataclass
class GuardedService:
    """Everything a running service holds: the model and its schema, the key ring, limits, metrics, and the
    optional audit log, explainer and per-batch hooks (detectors, drift monitor) called as
    ``hook(key_id, x, probabilities, now)`` on the predicted rows, in a background thread
    (:class:`~garrison.serve.background.BackgroundHooks`), and ``model_listeners`` called after a model swap
    (detectors calibrated on the served model's outputs refit). ``model_version`` is reported in responses."""

    model: Classifier
    schema: Schema
    keys: Authenticator
    settings: ServeSettings = field(default_factory=ServeSettings)
    audit_log: AuditSink | None = None
    explainer: Any = None
    hooks: list[RowHook] = field(default_factory=list)
    model_version: str = ""
    records: bool = True
    store: Any = None
    on_signal: Callable[..., Any] | None = None
    clock: Callable[[], float] = time.monotonic
    model_listeners: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        s = self.settings
        self.validator = RequestValidator(self.schema, max_batch=s.max_batch, records=self.records)
        self.limiter = RateLimiter(rate=s.rate, burst=s.burst)
        self.metrics = ServiceMetrics()
        self.ready = True
        self.abstaining: set[str] = set()
        self.background: BackgroundHooks | None = None
        self._set_labels()
        self.feedback = FeedbackTracker(self._labels, window=s.feedback_window)

    def start_background(self) -> None:
        """Start the thread that runs :attr:`hooks` on submitted batches (:func:`create_app` does it)."""
        if self.hooks and self.background is None:
            self.background = BackgroundHooks(
                self.hooks, interval_s=self.settings.detect_interval_s, on_error=self._hook_failed
            )

    def close(self) -> None:
        if self.background is not None:
            self.background.close()
            self.background = None

    def _hook_failed(self, hook: Callable[..., Any], exc: BaseException) -> None:
        self.metrics.hook_errors.labels(getattr(hook, "__name__", type(hook).__name__)).inc()

    def swap_model(self, model: Classifier, version: str) -> None:
        """Serve ``model`` from the next request on (a fallback or rollback); it must take the same inputs."""
        if model.input_spec.n_features != self.model.input_spec.n_features:
            raise ValueError("the replacement model takes other inputs than the served one")
        self.model, self.model_version = model, version
        self._set_labels()
        old = self.explainer
        if old is not None:  # explanations must come from the model that answered
            from garrison.explain import Explainer

            self.explainer = Explainer(model, background=old.background, budget_s=old.budget_s,
                                       max_background=old.max_background)  # fmt: skip
        for listener in self.model_listeners:  # detectors calibrated on the model's outputs refit themselves
            try:
                listener()
            except Exception as exc:  # a detector that cannot refit is reported; the swap stands
                self._hook_failed(listener, exc)

    def _set_labels(self) -> None:
        labels = self.model.classes
        self._labels = [_json_label(c) for c in labels] if labels else list(range(self.model.n_classes))


Body = bytes | AsyncIterator[bytes]  # a body already whole, or its chunks as they arrive
HotRoute = Callable[[Mapping[str, str], Body], Awaitable[Response]]


class _Disconnected(Exception):
    """The client went away before its body arrived."""


class GuardedApp(FastAPI):
    """The service's FastAPI app, with its hot paths (``POST /v1/predict`` and ``/v1/explain``) answered first.

    FastAPI's middleware stack, router and endpoint machinery cost about 65 µs a request, more than every guard
    together (measured in-process on the benchmark's model: 224 µs through FastAPI, 158 µs for the same work as a
    plain ASGI callable). A hot path request goes straight to its handler with the request's headers and body
    chunks; its answer is the same Starlette :class:`Response` the FastAPI route would return. Everything else —
    the other routes, OpenAPI, lifespan, a mounted ``root_path`` — goes through FastAPI as usual. The handlers
    catch their own errors: an unexpected one is a 500 of the service's error shape, as through FastAPI.
    """

    hot_routes: dict[str, HotRoute]

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            route = self.hot_routes.get(scope["path"])
            if route is not None:
                await self._hot(route, scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _hot(self, route: HotRoute, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        # the first of repeated headers wins, as with Starlette's Headers.get
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(scope["headers"])
        }
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        first = message.get("body", b"")
        try:  # a body that came in one message (the usual one) is handed over as it is
            response = await route(
                headers, _body_chunks(first, receive) if message.get("more_body") else first
            )
        except _Disconnected:
            return
        except Exception:
            response = _error_response(500, "internal", "the service failed to answer")
        await response(scope, receive, send)


async def _body_chunks(first: bytes, receive: Any) -> AsyncIterator[bytes]:
    yield first
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def _error_response(status: int, code: str, message: str, field: str | None = None,
                    headers: dict[str, str] | None = None) -> Response:  # fmt: skip
    body = json.dumps({"error": {"code": code, "message": message, "field": field}}).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def create_app(service: GuardedService) -> GuardedApp:
    """The FastAPI app of ``service`` (see the module docstring)."""
    app = GuardedApp(
        title="Garrison guarded inference service",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind a key: only /healthz answers without one
    )
    metrics = service.metrics
    settings = service.settings
    service.start_background()
    # request ids: a random per-process prefix and a counter (uuid4 costs a system call per request)
    prefix, counter = uuid.uuid4().hex[:16], itertools.count(1)

    def next_id() -> str:
        return f"{prefix}{next(counter):016x}"

    error = _error_response

    def authorise(request: Request, scope: str) -> tuple[KeyIdentity | None, Response | None]:
        return authorise_headers(request.headers, scope)

    def authorise_headers(
        headers: Mapping[str, str], scope: str
    ) -> tuple[KeyIdentity | None, Response | None]:
        secret = _secret(headers)
        key = service.keys.authenticate(secret) if secret else None
        if key is None:
            metrics.rejected.labels("auth").inc()
            return None, error(401, "unauthenticated", "a valid API key is required",
                               headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        if not key.allows(scope):
            metrics.rejected.labels("scope").inc()
            return None, error(403, "forbidden", f"the key lacks the '{scope}' scope")
        if service.limiter.blocked(key.id):
            metrics.rejected.labels("blocked").inc()
            return None, error(403, "blocked", "the key is blocked")
        return key, None

    async def read_body(request: Request) -> bytes:
        return await read_body_from(request.headers, request.stream())

    async def read_body_from(headers: Mapping[str, str], chunks: Body) -> bytes:
        declared = headers.get("content-length")
        limit = settings.max_body_bytes
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise RequestError(f"the body is larger than {limit} bytes", status=413, code="body_size")
        if isinstance(chunks, bytes):
            parts, size = [chunks], len(chunks)
        else:
            parts, size = [], 0
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise RequestError(f"the body is larger than {limit} bytes", status=413, code="body_size")
                parts.append(chunk)
        if size > limit:
            raise RequestError(f"the body is larger than {limit} bytes", status=413, code="body_size")
        kind = headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if kind != "application/json":
            raise RequestError("the body must be application/json", status=415, code="media_type")
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def guarded(headers: Mapping[str, str], chunks: Body, route: str, scope: str
                      ) -> Response:  # fmt: skip
        started = time.perf_counter()
        key, refused = authorise_headers(headers, scope)
        if refused is not None:
            metrics.observe(route, refused.status_code, time.perf_counter() - started)
            return refused
        assert key is not None
        if key.id in service.abstaining:
            metrics.rejected.labels("abstained").inc()
            metrics.observe(route, 503, time.perf_counter() - started)
            return error(503, "abstained", "the service abstains from answering this key (an open incident)")
        now = service.clock()
        throttle = service.limiter.take(key.id, now)
        if throttle is not None:
            metrics.rejected.labels("rate").inc()
            wait = max(1, int(throttle.retry_after + 0.999)) if throttle.retry_after != float("inf") else 3600
            response = error(
                429, "rate_limited", "too many requests for this key", headers={"Retry-After": str(wait)}
            )
            metrics.observe(route, 429, time.perf_counter() - started)
            return response
        try:
            body = await read_body_from(headers, chunks)
            batch = service.validator.validate(parse_json(body))
            if batch.n > 1:
                extra = service.limiter.take(key.id, now, cost=batch.n - 1)
                if extra is not None:
                    raise RequestError(
                        "the batch exceeds this key's rate limit", status=429, code="rate_limited"
                    )
            request_id = next_id()
            if settings.offload:  # slow models: off the event loop, under a deadline
                try:
                    with anyio.fail_after(settings.timeout_s):
                        payload = await anyio.to_thread.run_sync(_answer, service, route, batch, key.id, body, now,
                                                                 request_id, abandon_on_cancel=True)  # fmt: skip
                except TimeoutError:
                    raise RequestError(f"the model did not answer within {settings.timeout_s:g} s", status=503,
                                       code="timeout") from None  # fmt: skip
            else:  # fast models: inline, as a bare endpoint would (a thread hop costs ~0.1 ms)
                payload = _answer(service, route, batch, key.id, body, now, request_id)
        except RequestError as exc:
            metrics.rejected.labels(exc.code).inc()
            headers = {"Retry-After": "1"} if exc.status == 429 else None
            response = error(exc.status, exc.code, exc.reason, exc.field, headers)
            metrics.observe(route, exc.status, time.perf_counter() - started)
            return response
        entry = payload.pop("_entry", None)
        if entry is not None and service.audit_log is not None:
            try:  # committed (journalled) before the response is sent
                service.audit_log.append_many([(route, key.id, entry)])
            except Exception:
                metrics.rejected.labels("audit_log").inc()
                metrics.observe(route, 503, time.perf_counter() - started)
                return error(
                    503, "unavailable", "the audit log could not record the request; nothing was answered"
                )
        payload["request_id"] = request_id
        metrics.count_rows(route, batch.n)
        response = Response(_dumps(payload), media_type="application/json")
        metrics.observe(route, 200, time.perf_counter() - started)
        return response

    body_schema = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _body_schema(service)}},
        },
        "responses": {str(s): {"description": d} for s, d in _ERRORS.items()},
    }

    async def predict_route(headers: Mapping[str, str], chunks: Body) -> Response:
        return await guarded(headers, chunks, "predict", "predict")

    async def explain_route(headers: Mapping[str, str], chunks: Body) -> Response:
        if service.explainer is None:
            return error(404, "not_available", "explanations are not enabled on this service")
        return await guarded(headers, chunks, "explain", "explain")

    # FastAPI's routes document the hot paths in the OpenAPI and serve them under a root_path; otherwise
    # GuardedApp answers them before FastAPI's middleware and routing (see its docstring)
    @app.post("/v1/predict", openapi_extra=body_schema, summary="Predict a batch of rows")
    async def predict(request: Request) -> Response:
        return await predict_route(request.headers, request.stream())

    @app.post("/v1/explain", openapi_extra=body_schema, summary="Predict and explain a batch of rows")
    async def explain(request: Request) -> Response:
        return await explain_route(request.headers, request.stream())

    app.hot_routes = {"/v1/predict": predict_route, "/v1/explain": explain_route}

    @app.post("/v1/feedback", summary="Late labels for earlier predictions (joined by request id)",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _FEEDBACK}}},
                             "responses": {str(s): {"description": d} for s, d in _ERRORS.items()}})  # fmt: skip
    async def feedback(request: Request) -> Response:
        started = time.perf_counter()
        key, refused = authorise(request, "predict")
        if refused is not None:
            return refused
        try:
            result = service.feedback.join(parse_json(await read_body(request)))
        except RequestError as exc:
            metrics.rejected.labels(exc.code).inc()
            return error(exc.status, exc.code, exc.reason, exc.field)
        metrics.feedback.labels("joined").inc(result.joined)
        metrics.feedback.labels("unknown").inc(result.unknown)
        accuracy = service.feedback.accuracy
        if accuracy is not None:
            metrics.live_accuracy.set(accuracy)
        if service.audit_log is not None:
            service.audit_log.append_many([("feedback", key.id, {"joined": result.joined, "correct": result.correct,
                                                                 "unknown": result.unknown})])  # fmt: skip
        if service.feedback.degraded() and service.on_signal is not None:
            from garrison.respond import Signal

            service.on_signal(Signal("performance", "high", "model", f"live accuracy {accuracy:.3f} is more than "
                                     f"{service.feedback.tolerance:g} below the reference "
                                     f"{service.feedback.baseline:.3f}", details={"accuracy": accuracy}), None)  # fmt: skip
        metrics.observe("feedback", 200, time.perf_counter() - started)
        return Response(json.dumps({"joined": result.joined, "correct": result.correct, "unknown": result.unknown,
                                    "live_accuracy": accuracy}).encode(), media_type="application/json")  # fmt: skip

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> Response:
        _, refused = authorise(request, "predict")
        if refused is not None:
            return refused
        return Response(json.dumps(app.openapi()).encode(), media_type="application/json")

    @app.get("/healthz", summary="Liveness (no key needed)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness", responses={401: {"description": "no or bad key"}})
    async def readyz(request: Request) -> Response:
        _, refused = authorise(request, "predict")
        if refused is not None:
            return refused
        if not service.ready:
            return error(503, "not_ready", "the service is not ready")
        return Response(b'{"status":"ready"}', media_type="application/json")

    @app.get("/v1/model", summary="The served model", responses={401: {"description": "no or bad key"}})
    async def model_info(request: Request) -> Response:
        _, refused = authorise(request, "predict")
        if refused is not None:
            return refused
        info = {"name": getattr(service.model, "name", "model"), "version": service.model_version,
                "classes": service._labels, "features": list(service.schema.names())}  # fmt: skip
        return Response(json.dumps(info).encode(), media_type="application/json")

    @app.get(
        "/metrics",
        summary="Prometheus metrics (admin scope)",
        responses={401: {"description": "no or bad key"}},
    )
    async def metrics_endpoint(request: Request) -> Response:
        _, refused = authorise(request, "admin")
        if refused is not None:
            return refused
        text, content_type = metrics.exposition()
        return Response(text, media_type=content_type)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return error(422, "invalid", "the request is malformed")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error(
            exc.status_code, code, "no such endpoint" if exc.status_code == 404 else "request refused"
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        return error(500, "internal", "the service failed to answer")

    add_admin_routes(app, service, authorise, error)
    return app


_FEEDBACK = {
    "type": "object",
    "required": ["labels"],
    "additionalProperties": False,
    "properties": {"labels": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {
        "type": "object", "required": ["request_id", "label"],
        "properties": {"request_id": {"type": "string"}, "row": {"type": "integer", "minimum": 0}, "label": {}}}}},
}  # fmt: skip

_ERRORS = {
    400: "the body is not strict JSON (NaN, duplicate keys, too deep, not UTF-8)",
    401: "no or bad API key",
    403: "the key lacks the scope or is blocked",
    413: "the body is too large",
    415: "the body is not application/json",
    422: "the rows do not match the model's schema (the field is named)",
    429: "rate limited (Retry-After)",
}


def _dumps(payload: Mapping[str, Any]) -> bytes:
    """The response body: orjson (the serve extra's codec, ~15× faster here) when installed."""
    if _orjson is not None:
        return _orjson.dumps(payload)
    return json.dumps(payload).encode()


def _secret(headers: Mapping[str, str]) -> str | None:
    header = headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None
    return headers.get("x-api-key") or None


def _answer(service: GuardedService, route: str, batch: ValidatedBatch, key_id: str, body: bytes, now: float,
            request_id: str) -> dict[str, Any]:  # fmt: skip
    """The work of one request: the model, the rows handed to the detectors, and the audit-log entry to commit
    (under ``"_entry"``) before the response is sent."""
    payload = _predict(service, batch) if route == "predict" else _explain(service, batch)
    probabilities = payload.pop("_probabilities")
    predicted = payload.pop("_predicted")
    service.feedback.remember(request_id, predicted)
    if service.background is not None:
        service.background.submit(key_id, batch.x, probabilities, now)
    if service.audit_log is not None:
        entry: dict[str, Any] = {"request_id": request_id, "rows": batch.n, "predicted": predicted,
                                 "sha256": hashlib.sha256(body).hexdigest()}  # fmt: skip
        if service.settings.log_payloads:
            entry["body"] = body.decode("utf-8")
        payload["_entry"] = entry
    return payload


def _predict(service: GuardedService, batch: ValidatedBatch) -> dict[str, Any]:
    probabilities = np.asarray(service.model.predict_proba(batch.x), dtype=np.float64)
    if probabilities.shape != (batch.n, service.model.n_classes) or not np.isfinite(probabilities).all():
        raise RuntimeError("the model returned no valid probabilities")
    predicted = probabilities.argmax(axis=1).tolist()
    labels = service._labels
    rows = [
        {"label": labels[c], "probabilities": row}
        for c, row in zip(predicted, probabilities.round(6).tolist(), strict=True)
    ]
    return {
        "predictions": rows,
        "classes": labels,
        "model": {"name": getattr(service.model, "name", "model"), "version": service.model_version},
        "_probabilities": probabilities,
        "_predicted": predicted,
    }


def _explain(service: GuardedService, batch: ValidatedBatch) -> dict[str, Any]:
    out = _predict(service, batch)
    explained = service.explainer.explain(batch.x, target=np.asarray(out["_predicted"]))
    tops = explained.row_top_features(service.settings.explain_top_k)
    for row, top in zip(out["predictions"], tops, strict=True):
        row["explanation"] = [{"feature": name, "attribution": round(value, 6)} for name, value in top]
    out["method"] = explained.method
    return out


def _body_schema(service: GuardedService) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for f in service.schema.features:
        kind = f.kind.value
        if kind == "categorical":
            spec: dict[str, Any] = {"type": "string", "enum": list(f.categories or ())}
        elif kind == "boolean":
            spec = {"type": "boolean"}
        else:
            spec = {"type": "integer" if kind == "integer" else "number"}
            if f.min is not None:
                spec["minimum"] = f.min
            if f.max is not None:
                spec["maximum"] = f.max
        if f.nullable:
            spec = {"anyOf": [spec, {"type": "null"}]}
        props[f.name] = spec
    row = {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}
    n = service.settings.max_batch
    inputs = {
        "type": "object",
        "required": ["inputs"],
        "additionalProperties": False,
        "properties": {"inputs": {"type": "array", "minItems": 1, "maxItems": n,
                                  "items": {"type": "array", "items": {"type": "number"}}}},
    }  # fmt: skip
    if not service.records:
        return inputs
    records = {
        "type": "object",
        "required": ["instances"],
        "additionalProperties": False,
        "properties": {"instances": {"type": "array", "minItems": 1, "maxItems": n, "items": row}},
    }
    return {"oneOf": [records, inputs]}


def _json_label(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, (str, int, float, bool)) else str(value)
