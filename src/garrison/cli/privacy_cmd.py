"""``garrison privacy audit``: the privacy check alone, on the model and data of a garrison.yaml.

The model, datasets, scanning and the ``checks.privacy`` options come from the config exactly as in
``garrison audit``; only the privacy check runs. Exit codes: 0 passed, 1 a finding at or above the policy's
``fail_on`` severity, 2 usage or config error, 3 the check errored or was skipped.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from garrison.cli.console import info

__all__ = ["register"]

FORMATS = ("text", "json")
SCHEMA_VERSION = 1

privacy_app = typer.Typer(
    help="Privacy attacks as audits (membership inference, DP claims).", no_args_is_help=True
)


@privacy_app.command("audit")
def privacy_audit_command(
    config: Path = typer.Option(Path("garrison.yaml"), "--config", "-c", help="The garrison.yaml to use."),
    fmt: str = typer.Option("text", "--format", "-f", help=f"Output format: {'|'.join(FORMATS)}."),
    ci: bool = typer.Option(
        False, "--ci", help="CI mode: refuse `model.factory` (imports code) unless allowed."
    ),
    allow_factory: bool = typer.Option(False, "--allow-factory", help="With --ci: allow `model.factory`."),
    include_sensitive: bool = typer.Option(
        False, "--include-sensitive", help="Show sensitive evidence (the most exposed training rows)."
    ),
) -> None:
    """Membership inference against the configured model (its train set as members, test set as non-members)
    and, when `checks.privacy` claims an (ε, δ), whether an attack contradicts the claim."""
    from garrison.audit import audit
    from garrison.audit.check import CheckRegistry
    from garrison.audit.checks.privacy import PrivacyCheck
    from garrison.cli.console import RichProgress
    from garrison.core import load_config
    from garrison.core.audit_report import ExitCode
    from garrison.core.results import CheckStatus

    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}, got {fmt!r}", param_hint="--format")
    cfg = load_config(config, env=dict(os.environ))
    only = {k: v for k, v in cfg.checks.items() if k == PrivacyCheck.id}
    registry = CheckRegistry()
    registry.register(PrivacyCheck)
    info(f"privacy audit of {cfg.model.name if cfg.model else 'the model'} ({config})")
    with RichProgress() as progress:
        report = audit(replace(cfg, checks=only), registry=registry, progress=progress,
                       allow_factory=allow_factory or not ci)  # fmt: skip
    result = report.result(PrivacyCheck.id)
    assert result is not None
    payload = _payload(result.to_dict(), config, include_sensitive=include_sensitive)
    if fmt == "json":
        typer.echo(json.dumps(payload, indent=2, sort_keys=True, allow_nan=False))
    else:
        typer.echo(_text(payload))
    if result.status is not CheckStatus.OK:
        raise typer.Exit(int(ExitCode.INCOMPLETE))
    if any(f.severity >= cfg.policy.fail_on for f in result.findings):
        raise typer.Exit(int(ExitCode.FAILED))


def _payload(result: dict[str, Any], config: Path, *, include_sensitive: bool) -> dict[str, Any]:
    roc = next((f for f in result["figures"] if f["id"] == "privacy-roc"), None)
    findings = []
    for f in result["findings"]:
        evidence = {
            e["key"]: e["value"] for e in f.get("evidence", []) if include_sensitive or not e.get("sensitive")
        }
        findings.append({"rule_id": f["rule_id"], "title": f["title"], "severity": f["severity"],
                         "message": f["message"], "evidence": evidence})  # fmt: skip
    return {
        "schema_version": SCHEMA_VERSION,
        "config": str(config),
        "status": result["status"],
        "error": result["error"],
        "reason": result["reason"],
        "partial": result["partial"],
        "metrics": {
            m["name"]: {k: m[k] for k in ("value", "n", "ci_low", "ci_high")} for m in result["metrics"]
        },
        "attacks": roc["table"] if roc else [],
        "caption": roc["caption"] if roc else "",
        "findings": findings,
    }


def _text(payload: dict[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return "   n/a" if v is None else f"{100 * v:6.2f}%"

    if payload["status"] != "ok":
        return f"privacy check {payload['status']}: {payload['error'] or payload['reason']}"
    metrics = payload["metrics"]
    lines = [
        f"members {metrics['n_members']['n']}, non-members {metrics['n_nonmembers']['n']}, "
        f"reference models {int(metrics['reference_models']['value'])}",
        "",
        f"{'attack':14} {'AUC':>6}   {'TPR@0.1% FPR [95% CI]':28} TPR@1% FPR [95% CI]",
    ]
    for row in payload["attacks"]:
        lines.append(
            f"{row['method']:14} {row['auc']:6.3f}   {pct(row['tpr@0.1%'])} [{pct(row['ci_low@0.1%'])}, "
            f"{pct(row['ci_high@0.1%'])}]   {pct(row['tpr@1%'])} [{pct(row['ci_low@1%'])}, {pct(row['ci_high@1%'])}]"
        )
    lines.append(payload["caption"])
    for f in payload["findings"]:
        lines.append(f"{f['rule_id']} [{f['severity']}] {f['title']}: {f['message']}")
    if payload["partial"]:
        lines.append("(partial: the time budget ran out)")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.add_typer(privacy_app, name="privacy")
