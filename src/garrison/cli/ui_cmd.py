"""``garrison ui``: serve the team dashboard over the store on uvicorn."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from garrison.cli.console import info

__all__ = ["register"]


def ui_command(
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="Project config whose policy the gate applies (default: ./garrison.yaml).",
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", help="Port."),
    store: str | None = typer.Option(
        None,
        "--store",
        help="Database URL (default: GARRISON_DB_URL, else .garrison/garrison.db of the project).",
    ),
) -> None:
    """Serve the dashboard: models, audits, findings triage (written to .garrison/triage.yaml), incidents, users.

    Add users first with `garrison users add NAME --role admin`. Off a loopback address cookies are Secure: put
    the UI behind HTTPS.
    """
    import uvicorn

    from garrison.core import load_config
    from garrison.store import Store, default_url
    from garrison.ui import UiSettings, create_ui_app
    from garrison.ui.auth import LOOPBACK_HOSTS

    path = config if config is not None else Path("garrison.yaml")
    policy = None
    if config is not None or path.is_file():
        policy = load_config(path, env=dict(os.environ)).policy
    project_dir = path.resolve().parent
    url = store or os.environ.get("GARRISON_DB_URL") or default_url(project_dir)
    settings = UiSettings(policy=policy, secure_cookies=host not in LOOPBACK_HOSTS)
    with Store.open(url) as st:
        app = create_ui_app(st, project_dir=project_dir, settings=settings)
        info(
            f"dashboard on http://{host}:{port} (store {st.safe_url}, triage {project_dir}/.garrison/triage.yaml)"
        )
        uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False, server_header=False)


def register(app: typer.Typer) -> None:
    app.command("ui")(ui_command)
