"""Hugging Face model repositories and JSON configs: code that ``trust_remote_code=True`` would run
(GAR-SC-010), chat templates (GAR-SC-009) and Keras configs saved as JSON (GAR-SC-005).

:func:`scan_json` reads any JSON file (in a directory or an archive):

* ``auto_map`` (``config.json``, ``tokenizer_config.json``, ``processor_config.json``...) and
  ``custom_pipelines`` name classes in the repository's own ``*.py`` files, which transformers imports and runs
  with ``trust_remote_code=True``: high. When the JSON is a real file, the named modules are looked up beside it
  (and the modules they import relatively, a few levels deep) and read with :mod:`ast` (never imported): calls
  that run commands, evaluate code, open sockets or fetch URLs raise the finding to critical with file and line.
  ``"other/repo--module.Class"`` names code in another repository, which cannot be inspected here: high.
* ``chat_template`` (a string, or a list of ``{"name", "template"}``) is analysed by
  :mod:`garrison.supplychain.jinja_template`.
* A Keras model config (``model.to_json()``) is analysed by :mod:`garrison.supplychain.keras`.

:func:`scan_huggingface_dir` adds what only the directory shows: chat templates kept as files
(``chat_template.jinja``, ``additional_chat_templates/*.jinja``), which no JSON names. A template file that
opens with ``{%``/``{{``/``{#`` looks like JSON to content detection; :func:`scan_json` analyses it then, and
the directory scanner leaves it to it, so each template is reported once.
"""

from __future__ import annotations

import ast
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from garrison.core.rules import SC_REMOTE_CODE
from garrison.core.severity import Severity
from garrison.supplychain.blob import Blob
from garrison.supplychain.context import ScanContext
from garrison.supplychain.jinja_template import TemplateIssue, analyze_template, report_template_issues
from garrison.supplychain.keras import (
    analyze_keras_config,
    looks_like_keras_config,
    parse_json_bounded,
    report_keras_issues,
)

__all__ = [
    "CodeHit",
    "RemoteCodeRef",
    "dangerous_calls",
    "remote_code_refs",
    "scan_huggingface_dir",
    "scan_json",
]

_MAX_PY_BYTES = 4 * 2**20
_MAX_PY_FILES = 64
_MAX_IMPORT_DEPTH = 3
_MAX_TEMPLATE_FILES = 64
_DANGEROUS_CALLS = {
    "os.system": "runs a shell command",
    "os.popen": "runs a shell command",
    "os.execv": "replaces the process",
    "os.execve": "replaces the process",
    "os.execl": "replaces the process",
    "os.execvp": "replaces the process",
    "os.spawnl": "starts a process",
    "os.spawnv": "starts a process",
    "os.posix_spawn": "starts a process",
    "os.fork": "forks the process",
    "os.remove": "deletes files",
    "os.unlink": "deletes files",
    "shutil.rmtree": "deletes files",
    "subprocess.run": "runs a command",
    "subprocess.call": "runs a command",
    "subprocess.check_call": "runs a command",
    "subprocess.check_output": "runs a command",
    "subprocess.Popen": "runs a command",
    "subprocess.getoutput": "runs a command",
    "subprocess.getstatusoutput": "runs a command",
    "pty.spawn": "runs a command",
    "eval": "evaluates code",
    "exec": "executes code",
    "compile": "compiles code",
    "__import__": "imports a module by name",
    "importlib.import_module": "imports a module by name",
    "runpy.run_path": "runs a script",
    "runpy.run_module": "runs a module",
    "marshal.loads": "loads bytecode",
    "pickle.loads": "unpickles data",
    "pickle.load": "unpickles data",
    "ctypes.CDLL": "loads a native library",
    "ctypes.cdll.LoadLibrary": "loads a native library",
    "socket.socket": "opens a network socket",
    "socket.create_connection": "opens a network connection",
    "urllib.request.urlopen": "fetches a URL",
    "urllib.request.urlretrieve": "downloads a file",
    "requests.get": "fetches a URL",
    "requests.post": "sends data to a URL",
    "requests.put": "sends data to a URL",
    "httpx.get": "fetches a URL",
    "httpx.post": "sends data to a URL",
    "webbrowser.open": "opens a URL",
}
_TEMPLATE_FILES = ("chat_template.jinja",)
_TEMPLATE_DIR = "additional_chat_templates"
_JINJA_OPENERS = ("{%", "{{", "{#")


@dataclass(frozen=True, slots=True)
class CodeHit:
    """A dangerous call in a Python file: ``call`` the resolved dotted name, ``what`` what it does."""

    file: str
    line: int
    call: str
    what: str


@dataclass(frozen=True, slots=True)
class RemoteCodeRef:
    """A class named by ``auto_map``/``custom_pipelines``: where (``key``), the module file it lives in, and the
    other repository it comes from when it is not this one."""

    key: str
    reference: str
    module_file: str | None
    repository: str | None


def remote_code_refs(config: dict[str, Any]) -> list[RemoteCodeRef]:
    """Every class reference of a config's ``auto_map`` and ``custom_pipelines``."""
    refs: list[RemoteCodeRef] = []
    auto_map = config.get("auto_map")
    if isinstance(auto_map, dict):
        for key, value in auto_map.items():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str) and item:
                    refs.append(_ref(f"auto_map.{key}", item))
    elif auto_map is not None:
        refs.append(RemoteCodeRef("auto_map", repr(auto_map)[:200], None, None))
    pipelines = config.get("custom_pipelines")
    if isinstance(pipelines, dict):
        for task, spec in pipelines.items():
            impl = spec.get("impl") if isinstance(spec, dict) else None
            if isinstance(impl, str) and impl:
                refs.append(_ref(f"custom_pipelines.{task}.impl", impl))
    return refs


def _ref(key: str, reference: str) -> RemoteCodeRef:
    repository = None
    target = reference
    if "--" in reference:
        repository, target = reference.split("--", 1)
    module = target.rsplit(".", 1)[0] if "." in target else target
    return RemoteCodeRef(key, reference, module.replace(".", "/") + ".py", repository)


def dangerous_calls(source: str, file: str) -> tuple[list[CodeHit], list[str]]:
    """Dangerous calls in Python source, by static reading (``ast``; nothing is imported or run), and the
    modules it imports relatively (``from .x import y`` -> ``x``). Unparseable source is one hit."""
    try:
        tree = ast.parse(source, filename=file)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return [
            CodeHit(file, getattr(exc, "lineno", 0) or 0, "<unparseable>", "cannot be parsed as Python")
        ], []
    aliases = _import_aliases(tree)
    hits: list[CodeHit] = []
    relative: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            if node.module:
                relative.append(node.module)
            else:
                relative.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.Call):
            name = _dotted(node.func, aliases)
            if name in _DANGEROUS_CALLS:
                hits.append(CodeHit(file, node.lineno, name, _DANGEROUS_CALLS[name]))
    return hits, relative


def _import_aliases(tree: ast.Module) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def _inspect_modules(
    directory: Path, refs: list[RemoteCodeRef]
) -> tuple[list[str], list[str], list[CodeHit]]:
    """Follow the referenced modules (and their relative imports) in ``directory``: found, missing, hits."""
    found: list[str] = []
    missing: list[str] = []
    hits: list[CodeHit] = []
    queue = [(ref.module_file, 0) for ref in refs if ref.module_file and ref.repository is None]
    seen: set[str] = set()
    while queue and len(seen) < _MAX_PY_FILES:
        rel, depth = queue.pop(0)
        if rel is None or rel in seen:
            continue
        seen.add(rel)
        path = directory / rel
        if ".." in Path(rel).parts or not path.is_file():
            missing.append(rel)
            continue
        found.append(rel)
        try:
            raw = path.read_bytes()[:_MAX_PY_BYTES]
        except OSError:
            missing.append(rel)
            continue
        file_hits, relative = dangerous_calls(raw.decode("utf-8", "replace"), rel)
        hits.extend(file_hits)
        if depth < _MAX_IMPORT_DEPTH:
            base = posixpath.dirname(rel)
            queue.extend((posixpath.join(base, m.replace(".", "/") + ".py"), depth + 1) for m in relative)
    return found, missing, hits


def _report_remote_code(ctx: ScanContext, blob: Blob, refs: list[RemoteCodeRef]) -> None:
    directory = blob.path.parent if blob.path is not None else None
    found, missing, hits = _inspect_modules(directory, refs) if directory is not None else ([], [], [])
    other_repos = sorted({r.repository for r in refs if r.repository})
    severity = Severity.CRITICAL if any(h.call != "<unparseable>" for h in hits) else Severity.HIGH
    names = ", ".join(sorted({r.reference for r in refs})[:5])
    message = f"trust_remote_code would import and run this repository's code ({names})"
    if hits:
        shown = "; ".join(f"{h.call} in {h.file}:{h.line} ({h.what})" for h in hits[:5])
        message += f"; the code {shown}"
    if other_repos:
        message += f"; code from other repositories: {', '.join(other_repos[:5])}"
    ctx.report(
        SC_REMOTE_CODE,
        blob,
        message,
        severity=severity,
        evidence={
            "references": [
                {
                    "key": r.key,
                    "reference": r.reference,
                    "module_file": r.module_file,
                    "repository": r.repository,
                }
                for r in refs[:100]
            ],
            "python_files": found,
            "missing_files": missing if directory is not None else None,
            "dangerous_calls": [
                {"file": h.file, "line": h.line, "call": h.call, "what": h.what} for h in hits[:100]
            ],
        },
    )


def _templates_of(config: dict[str, Any]) -> dict[str, str | None]:
    value = config.get("chat_template")
    if value is None:
        return {}
    if isinstance(value, str):
        return {"chat_template": value}
    out: dict[str, str | None] = {}
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict) and isinstance(item.get("template"), str):
                out[f"chat_template[{item.get('name', i)}]"] = item["template"]
            else:
                out[f"chat_template[{i}]"] = None
    else:
        out["chat_template"] = None
    return out


def _analyze_templates(templates: dict[str, str | None], ctx: ScanContext) -> dict[str, list[TemplateIssue]]:
    out: dict[str, list[TemplateIssue]] = {}
    for name, source in templates.items():
        ctx.check_deadline()
        out[name] = (
            analyze_template(source)
            if source is not None
            else [TemplateIssue(Severity.MEDIUM, "chat template entry is not a template string")]
        )
    return out


def scan_json(blob: Blob, ctx: ScanContext) -> None:
    """Scan a JSON file for remote code (``auto_map``), chat templates and Keras configs."""
    try:
        document = parse_json_bounded(blob.view())
    except ValueError as exc:
        text = _jinja_text(blob.view())
        if text is not None:
            # Content detection calls a template that opens with "{%" or "{{" JSON; it is analysed as one.
            report_template_issues(
                ctx, blob, {_basename(blob.location): analyze_template(text)}, source=_basename(blob.location)
            )
            return
        ctx.incomplete(blob.location, f"JSON cannot be read: {exc}")
        return
    if not isinstance(document, dict):
        return
    refs = remote_code_refs(document)
    if refs:
        _report_remote_code(ctx, blob, refs)
    templates = _templates_of(document)
    if templates:
        report_template_issues(ctx, blob, _analyze_templates(templates, ctx), source=_basename(blob.location))
    if looks_like_keras_config(document):
        try:
            issues = analyze_keras_config(document)
        except ValueError as exc:
            ctx.incomplete(blob.location, f"Keras config cannot be analysed: {exc}")
            return
        report_keras_issues(ctx, blob, issues, source="model config")


def _jinja_text(data: memoryview) -> str | None:
    """The text of a Jinja template that starts like JSON (with ``{%``, ``{{`` or ``{#``), else ``None``."""
    head = bytes(data[:4096]).decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if not head.startswith(_JINJA_OPENERS):
        return None
    return bytes(data).decode("utf-8", "replace")


def _basename(location: str) -> str:
    return location.rsplit("!", 1)[-1].rsplit("/", 1)[-1]


def _template_files(path: Path) -> Iterator[Path]:
    for name in _TEMPLATE_FILES:
        if (path / name).is_file():
            yield path / name
    extra = path / _TEMPLATE_DIR
    if extra.is_dir():
        yield from sorted(p for p in extra.glob("*.jinja") if p.is_file())[:_MAX_TEMPLATE_FILES]


def scan_huggingface_dir(path: Path, location: str, ctx: ScanContext) -> None:
    """What a Hugging Face repository adds to its files: chat templates kept as ``.jinja`` files."""
    for file in _template_files(path):
        where = posixpath.join(location, file.relative_to(path).as_posix())
        try:
            raw = file.read_bytes()
        except OSError as exc:
            ctx.incomplete(where, f"cannot be read: {exc.strerror or exc}")
            continue
        text = raw.decode("utf-8", "replace")
        if text.lstrip("\ufeff \t\r\n")[:1] in ("{", "["):
            continue  # content detection routes it to scan_json, which analyses it
        report_template_issues(ctx, where, {file.name: analyze_template(text)}, source=file.name)
