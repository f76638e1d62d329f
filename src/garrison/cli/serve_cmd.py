"""``garrison serve``: run the guarded inference service of a garrison.yaml on uvicorn."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from garrison.cli.console import info

__all__ = ["register"]


def serve_command(
    config: Path = typer.Option(
        Path("garrison.yaml"), "--config", "-c", help="Project config (model, data, serve)."
    ),
    host: str | None = typer.Option(
        None, "--host", help="Address to listen on (default: serve.host, 127.0.0.1)."
    ),
    port: int | None = typer.Option(None, "--port", help="Port (default: serve.port, 8000)."),
    store: str | None = typer.Option(
        None, "--store", help="Store URL (default: serve.store or .garrison/garrison.db)."
    ),
    check: bool = typer.Option(
        False, "--check", help="Build the service, print what it would serve, and exit."
    ),
) -> None:
    """Serve the model with auth, limits, validation, detectors, drift, alerts, playbooks and an audit log.

    Keys come from `garrison keys create`; the OpenAPI document is at /openapi.json.
    """
    from garrison.core import load_config
    from garrison.serve import build_service

    cfg = load_config(config, env=dict(os.environ))
    bundle = build_service(cfg, env=dict(os.environ), store_url=store or os.environ.get("GARRISON_DB_URL"))
    try:
        service = bundle.service
        settings = service.settings
        for note in bundle.notes:
            info(f"note: {note}")
        info(f"serving {getattr(service.model, 'name', 'model')} {service.model_version or '(unregistered)'}: "
             f"{service.schema.n_features} features, {len(service.keys)} API keys, "  # type: ignore[arg-type]
             f"explain {'on' if service.explainer is not None else 'off'}")  # fmt: skip
        if check:
            return
        listen_host, listen_port = host or settings.host, port if port is not None else settings.port
        info(f"listening on http://{listen_host}:{listen_port} (OpenAPI: /openapi.json, with a key)")
        bundle.run(host=listen_host, port=listen_port)
    finally:
        bundle.close()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
