"""Admin endpoints of the guarded service (``admin`` scope): keys, model versions, incidents, blocked keys.

Every admin action that changes something is an entry of the hash-chained audit log (kind ``admin.<action>``,
actor the admin key's id), committed before the response, like a prediction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from garrison.serve.app import GuardedService

__all__ = ["add_admin_routes"]

Authorise = Callable[[Request, str], tuple[Any, Response | None]]
ErrorResponse = Callable[..., Response]


def add_admin_routes(
    app: FastAPI, service: GuardedService, authorise: Authorise, error: ErrorResponse
) -> None:
    """Add ``/v1/admin/...`` to ``app``; a service without a store answers them with 404."""

    def ok(doc: Any) -> Response:
        return Response(json.dumps(doc, sort_keys=True, default=str).encode(), media_type="application/json")

    def log(kind: str, actor: str, payload: dict[str, Any]) -> None:
        if service.audit_log is not None:
            service.audit_log.append_many([(f"admin.{kind}", actor, payload)])

    def admin(request: Request) -> tuple[Any, Response | None]:
        key, refused = authorise(request, "admin")
        if refused is None and service.store is None:
            return None, error(404, "not_available", "the service has no store")
        return key, refused

    @app.get("/v1/admin/keys", summary="API keys (never their secrets)")
    async def list_keys(request: Request) -> Response:
        _, refused = admin(request)
        if refused is not None:
            return refused
        keys = service.store.list_keys()
        return ok([{"id": k.id, "name": k.name, "scopes": sorted(k.scopes), "created_at": k.created_at,
                    "expires_at": k.expires_at, "revoked_at": k.revoked_at,
                    "blocked": service.limiter.blocked(k.id)} for k in keys])  # fmt: skip

    @app.post("/v1/admin/keys/{key_id}/revoke", summary="Revoke a key now")
    async def revoke_key(request: Request, key_id: str) -> Response:
        key, refused = admin(request)
        if refused is not None:
            return refused
        if not any(k.id == key_id for k in service.store.list_keys()):
            return error(404, "not_found", "no such key")
        service.store.revoke_key(key_id)
        service.keys.reload()
        log("revoke", key.id, {"key": key_id})
        return ok({"key": key_id, "revoked": True})

    @app.post("/v1/admin/keys/{key_id}/unblock", summary="Lift a playbook's block or throttle")
    async def unblock_key(request: Request, key_id: str) -> Response:
        key, refused = admin(request)
        if refused is not None:
            return refused
        service.limiter.unblock(key_id)
        service.abstaining.discard(key_id)
        log("unblock", key.id, {"key": key_id})
        return ok({"key": key_id, "blocked": False})

    @app.post("/v1/admin/keys/reload", summary="Read the keys from the store again")
    async def reload_keys(request: Request) -> Response:
        key, refused = admin(request)
        if refused is not None:
            return refused
        service.keys.reload()
        log("reload-keys", key.id, {})
        return ok({"reloaded": True})

    @app.get("/v1/admin/models", summary="Registered versions of the served model")
    async def list_models(request: Request) -> Response:
        _, refused = admin(request)
        if refused is not None:
            return refused
        name = getattr(service.model, "name", "model")
        versions = service.store.list_model_versions(name)
        return ok([{"version": v.version, "sha256": v.sha256, "signature": v.signature_status, "audit": v.audit_id,
                    "serving": v.serving, "created_at": v.created_at} for v in versions])  # fmt: skip

    @app.get("/v1/admin/incidents", summary="Incidents, newest first")
    async def list_incidents(request: Request) -> Response:
        _, refused = admin(request)
        if refused is not None:
            return refused
        return ok([{"id": i.id, "title": i.title, "severity": i.severity.value, "status": i.status,
                    "opened_at": i.opened_at, "details": i.details} for i in service.store.list_incidents()])  # fmt: skip

    @app.post(
        "/v1/admin/incidents/{incident}/{status}", summary="Acknowledge, mitigate or resolve an incident"
    )
    async def move_incident(request: Request, incident: int, status: str) -> Response:
        key, refused = admin(request)
        if refused is not None:
            return refused
        target = {"ack": "acknowledged", "mitigate": "mitigated", "resolve": "resolved"}.get(status)
        if target is None:
            return error(404, "not_found", "use ack, mitigate or resolve")
        if not any(i.id == incident for i in service.store.list_incidents()):
            return error(404, "not_found", "no such incident")
        service.store.update_incident(
            incident, status=target, actor=f"key:{key.id}", note="via the admin API"
        )
        log(f"incident-{status}", key.id, {"incident": incident})
        return ok({"incident": incident, "status": target})
