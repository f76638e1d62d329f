"""The GitHub Actions example in docs/ci-github-actions.md: valid YAML whose every `garrison` command parses with
the real CLI (command names, options, arguments), so the documented workflow cannot rot."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import typer
from click.testing import CliRunner
from ruamel.yaml import YAML

from garrison.cli.app import app as garrison_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "ci-github-actions.md"


def _workflow() -> dict[str, Any]:
    blocks = re.findall(r"^```yaml\n(.*?)^```", DOC.read_text(encoding="utf-8"), flags=re.M | re.S)
    assert len(blocks) == 1, "the doc holds exactly one YAML workflow"
    data = YAML(typ="safe", pure=True).load(blocks[0])
    assert isinstance(data, dict)
    return data


def _steps() -> list[dict[str, Any]]:
    jobs = _workflow()["jobs"]
    assert list(jobs) == ["audit"]
    steps = jobs["audit"]["steps"]
    assert all(isinstance(s, dict) for s in steps)
    return steps


def _cli() -> click.Group:
    """The real `garrison` command tree."""
    root = typer.main.get_command(garrison_app)
    assert isinstance(root, click.Group)
    return root


def _garrison_lines() -> list[list[str]]:
    out = []
    for step in _steps():
        for line in str(step.get("run", "")).splitlines():
            if line.strip().startswith("garrison "):
                out.append(shlex.split(line))
    return out


def _resolve(root: click.Group, argv: list[str]) -> tuple[list[str], click.Command, list[str]]:
    """(command path, leaf command, its arguments) of ``garrison <argv>``, global options checked on the way."""
    args = argv[1:]
    root_opts = {o for p in root.params for o in p.opts}
    while args and args[0].startswith("-"):
        assert args[0] in root_opts, f"unknown global option {args[0]}"
        args = args[1:]
    path: list[str] = []
    command: click.Command = root
    while isinstance(command, click.Group):
        assert args, f"{' '.join(argv)}: no subcommand"
        name, args = args[0], args[1:]
        assert name in command.commands, f"unknown command: garrison {' '.join([*path, name])}"
        path.append(name)
        command = command.commands[name]
    return path, command, args


def test_the_workflow_has_the_documented_shape() -> None:
    workflow = _workflow()
    assert "pull_request" in workflow["on"]
    assert workflow["permissions"]["security-events"] == "write"
    steps = _steps()
    uses = {str(s.get("uses", "")).split("@")[0]: s for s in steps if "uses" in s}
    assert {
        "actions/checkout",
        "actions/setup-python",
        "github/codeql-action/upload-sarif",
        "actions/github-script",
    } <= set(uses)
    assert str(uses["actions/setup-python"]["with"]["python-version"]) == "3.11"
    install = next(s for s in steps if "pip install" in str(s.get("run", "")))
    assert "garrison" in install["run"]

    audit = next(s for s in steps if s.get("id") == "audit")
    [audit_line] = [
        shlex.split(line) for line in audit["run"].splitlines() if line.strip().startswith("garrison ")
    ]
    assert "audit" in audit_line and "exit_code=$?" in audit["run"] and "set +e" in audit["run"]
    sarif = audit_line[audit_line.index("-o") + 1]
    assert audit_line[audit_line.index("-f") + 1] == "sarif"
    assert uses["github/codeql-action/upload-sarif"]["with"]["sarif_file"] == sarif
    report_dir = audit_line[audit_line.index("--report-dir") + 1]
    assert any(f'{report_dir}/summary.md >> "$GITHUB_STEP_SUMMARY"' in str(s.get("run", "")) for s in steps)
    assert f"{report_dir}/summary.md" in uses["actions/github-script"]["with"]["script"]

    gate = steps[-1]
    assert gate["run"].strip() == 'exit "${{ steps.audit.outputs.exit_code }}"'
    assert "if" not in gate  # the gate always runs, and fails the job on any non-zero audit exit


def test_every_garrison_command_in_the_workflow_parses_with_the_real_cli() -> None:
    root = _cli()
    lines = _garrison_lines()
    seen = set()
    for argv in lines:
        path, command, args = _resolve(root, argv)
        seen.add(" ".join(path))
        # click's own parser: an unknown option, a missing required one or an extra argument is a UsageError
        try:
            command.make_context(" ".join(["garrison", *path]), list(args))
        except click.UsageError as exc:
            pytest.fail(f"`{shlex.join(argv)}` does not parse: {exc.format_message()}")
        help_result = CliRunner().invoke(root, [*path, "--help"])
        assert help_result.exit_code == 0, help_result.output
        for token in args:
            if token.startswith("-") and token != "-":
                assert token.split("=")[0] in help_result.output, (
                    f"{token} not in `garrison {' '.join(path)} --help`"
                )
    assert {"audit", "attest", "verify-attestation"} <= seen


def test_the_attestation_written_is_the_one_verified_and_kept() -> None:
    commands = {" ".join(_resolve(_cli(), argv)[0]): argv for argv in _garrison_lines()}
    attest, verify = commands["attest"], commands["verify-attestation"]
    written = attest[attest.index("-o") + 1]
    assert verify[verify.index("verify-attestation") + 1] == written
    assert attest[attest.index("--model") + 1] == verify[verify.index("--model") + 1]
    keep = next(s for s in _steps() if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert written.startswith(keep["with"]["path"])


def test_a_wrong_flag_would_be_caught() -> None:
    """The checker itself can fail: a misspelt option does not parse."""
    root = _cli()
    path, command, args = _resolve(
        root, ["garrison", "audit", "--config", "garrison.yaml", "--sarif-out", "x"]
    )
    assert path == ["audit"]
    with pytest.raises(click.UsageError):
        command.make_context("garrison audit", args)
