"""ML code scan: bandit over Python files and Jupyter notebook cells, plus Garrison's own ML rules.

Our rules (on the AST, with import aliases resolved): unsafe model loading (GAR-CS-001), ``trust_remote_code=True``
(GAR-CS-002), unsafe YAML loading (GAR-CS-003), ``eval``/``exec`` of non-literals (GAR-CS-004) and hard-coded
secrets (GAR-CS-005: the secret itself never leaves this module; findings carry a redacted prefix and a digest).
bandit's own tests become GAR-CS-100, except where one of our rules already reports the same line.

Locations are ``<file>:<line>`` for Python files and ``<file>:cell<N>:<line>`` for notebook cells (cells counted
from 1 among all cells), where ``<file>`` is the root as given joined with the path below it. Nothing scanned is
executed or imported.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import logging
import math
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from garrison.core.errors import InputError, MissingDependencyError
from garrison.core.findings import Finding, Subject, SubjectKind
from garrison.core.rules import (
    CODE_BANDIT,
    CODE_EVAL,
    CODE_REMOTE_CODE,
    CODE_SECRET,
    CODE_UNSAFE_LOAD,
    CODE_UNSAFE_YAML,
    Rule,
)
from garrison.core.severity import Severity
from garrison.supplychain.result import Incomplete, ScannedFile, ScanResult

__all__ = ["BANDIT_SKIPPED_TESTS", "scan_code"]

BANDIT_SKIPPED_TESTS = frozenset({"B101"})
"""bandit tests not run: ``assert`` (B101) is everywhere in test code and no risk in ML code."""

# bandit tests whose pattern one of our rules reports with more context; at the same line, ours wins
_BANDIT_COVERED = {
    "B301": CODE_UNSAFE_LOAD.id,  # pickle, dill, shelve, jsonpickle, pandas.read_pickle
    "B614": CODE_UNSAFE_LOAD.id,  # torch.load
    "B506": CODE_UNSAFE_YAML.id,
    "B307": CODE_EVAL.id,
    "B102": CODE_EVAL.id,
    "B105": CODE_SECRET.id,
    "B106": CODE_SECRET.id,
    "B107": CODE_SECRET.id,
}
# bandit tests whose message quotes the suspected secret: their message is replaced
_BANDIT_QUOTES_SECRET = frozenset({"B105", "B106", "B107"})
_BANDIT_SEVERITY = {"HIGH": Severity.HIGH, "MEDIUM": Severity.MEDIUM, "LOW": Severity.LOW}

_MAX_FILE_BYTES = 10 * 2**20  # a larger "source file" is generated data, not code to review


# --- names -----------------------------------------------------------------------------------------------------

_PICKLE_MODULES = ("pickle", "_pickle", "cPickle", "dill", "cloudpickle")
_UNSAFE_LOADERS: dict[str, str] = {
    **{f"{m}.{f}": m for m in _PICKLE_MODULES for f in ("load", "loads", "Unpickler")},
    "dill.load_session": "dill",
    "joblib.load": "joblib",
    "sklearn.externals.joblib.load": "joblib",
    "pandas.read_pickle": "pandas",
    "shelve.open": "shelve",
    "jsonpickle.decode": "jsonpickle",
    "torch.serialization.load": "torch",
}
_TORCH_LOAD = frozenset({"torch.load", "torch.serialization.load"})
_NUMPY_LOAD = frozenset({"numpy.load"})
_YAML_UNSAFE_FUNCS = {
    "yaml.unsafe_load": Severity.HIGH,
    "yaml.unsafe_load_all": Severity.HIGH,
    "yaml.full_load": Severity.MEDIUM,
    "yaml.full_load_all": Severity.MEDIUM,
}
_YAML_LOAD = frozenset({"yaml.load", "yaml.load_all"})
_YAML_SAFE_LOADERS = frozenset({"yaml.SafeLoader", "yaml.CSafeLoader", "yaml.BaseLoader", "yaml.CBaseLoader"})
_YAML_FULL_LOADERS = frozenset({"yaml.FullLoader", "yaml.CFullLoader"})
_EVAL = frozenset({"eval", "exec", "builtins.eval", "builtins.exec"})
_JUDGED_BY = {
    **dict.fromkeys((*_UNSAFE_LOADERS, *_TORCH_LOAD, *_NUMPY_LOAD), CODE_UNSAFE_LOAD.id),
    **dict.fromkeys((*_YAML_UNSAFE_FUNCS, *_YAML_LOAD), CODE_UNSAFE_YAML.id),
    **dict.fromkeys(_EVAL, CODE_EVAL.id),
}


# --- secrets ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _SecretPattern:
    kind: str
    pattern: re.Pattern[str]
    min_entropy: float = 0.0


_SECRET_PATTERNS = (
    _SecretPattern("Hugging Face token", re.compile(r"(?<![A-Za-z0-9_])hf_[A-Za-z0-9]{30,}"), 3.0),
    _SecretPattern(
        "OpenAI API key",
        re.compile(r"(?<![A-Za-z0-9_-])sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}|[A-Za-z0-9]{32,})"),
        3.5,
    ),
    _SecretPattern(
        "AWS access key id", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"), 2.5
    ),
    _SecretPattern(
        "GitHub token",
        re.compile(r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{50,})"),
        3.0,
    ),
    _SecretPattern("Slack token", re.compile(r"(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9-]{10,}"), 3.0),
    _SecretPattern(
        "private key",
        re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    ),
)
_SECRET_NAME = re.compile(
    r"(?:^|_)(?:token|secret|api_?key|apikey|passw(?:or)?d|pwd|access_?key|private_?key|auth|credentials?)(?:$|_)",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(r"your|example|change_?me|placeholder|dummy|xxxx|\*\*\*|<|\{|\$", re.IGNORECASE)
_MIN_ASSIGNED_SECRET_LENGTH = 12
_MIN_ASSIGNED_SECRET_ENTROPY = (
    3.5  # bits per character; random tokens score 4.5-6, words and identifiers lower
)


def _entropy(text: str) -> float:
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values()) if n else 0.0


def _redacted(secret: str) -> dict[str, Any]:
    """What a finding may say about a secret: a short prefix, its length and a digest prefix."""
    prefix = secret[:4] if len(secret) >= 12 else secret[:1]
    return {
        "redacted": f"{prefix}…",
        "length": len(secret),
        "sha256_12": hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:12],
    }


def _looks_assigned_secret(value: str) -> bool:
    return (
        len(value) >= _MIN_ASSIGNED_SECRET_LENGTH
        and not any(ch.isspace() for ch in value)
        and not _PLACEHOLDER.search(value)
        and _entropy(value) >= _MIN_ASSIGNED_SECRET_ENTROPY
    )


# --- one source ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Hit:
    rule: Rule
    line: int
    message: str
    evidence: dict[str, Any]
    severity: Severity | None = None


def _dotted(node: ast.AST) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


def _is_const(node: ast.AST | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def _keyword(call: ast.Call, name: str) -> ast.keyword | None:
    return next((k for k in call.keywords if k.arg == name), None)


class _Visitor(ast.NodeVisitor):
    """Collects rule hits from one module; import aliases map local names to qualified names."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.hits: list[_Hit] = []
        # (rule id, line) of every call one of our rules judged, reported or not: bandit's same-line duplicate
        # of such a call is dropped (a literal `eval("1 + 2")` is not reported twice, nor once by bandit)
        self.judged: set[tuple[str, int]] = set()

    # imports: every binding, wherever it appears (functions import lazily too)
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.aliases[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                self.aliases[top] = top

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def qualname(self, node: ast.AST) -> str | None:
        parts = _dotted(node)
        if parts is None:
            return None
        head = self.aliases.get(parts[0], parts[0])
        return ".".join([head, *parts[1:]])

    def hit(
        self, rule: Rule, node: ast.AST, message: str, severity: Severity | None = None, **evidence: Any
    ) -> None:
        self.hits.append(_Hit(rule, getattr(node, "lineno", 1), message, evidence, severity))

    def visit_Call(self, node: ast.Call) -> None:
        name = self.qualname(node.func)
        if name is not None:
            self._call(node, name)
        remote = _keyword(node, "trust_remote_code")
        if remote is not None and _is_const(remote.value, True):
            self.hit(
                CODE_REMOTE_CODE,
                node,
                f"{name or 'a call'}(..., trust_remote_code=True) runs Python files from the model repository.",
                call=name or "",
            )
        self.generic_visit(node)

    def _call(self, node: ast.Call, name: str) -> None:
        rule = _JUDGED_BY.get(name)
        if rule is not None:
            self.judged.add((rule, node.lineno))
        if name in _TORCH_LOAD:
            self._torch_load(node, name)
        elif name in _UNSAFE_LOADERS:
            self.hit(
                CODE_UNSAFE_LOAD,
                node,
                f"{name}(...) deserialises with {_UNSAFE_LOADERS[name]}: a malicious file runs code when loaded.",
                call=name,
            )
        elif name in _NUMPY_LOAD:
            allow = _keyword(node, "allow_pickle")
            if allow is not None and _is_const(allow.value, True):
                self.hit(
                    CODE_UNSAFE_LOAD,
                    node,
                    f"{name}(..., allow_pickle=True) unpickles object arrays: a malicious file runs code.",
                    call=name,
                )
        elif name in _YAML_UNSAFE_FUNCS:
            self.hit(
                CODE_UNSAFE_YAML,
                node,
                f"{name}(...) can build arbitrary Python objects from the document.",
                severity=_YAML_UNSAFE_FUNCS[name],
                call=name,
            )
        elif name in _YAML_LOAD:
            self._yaml_load(node, name)
        elif name in _EVAL and node.func is not None and self._is_builtin(node.func):
            source = node.args[0] if node.args else None
            if source is not None and not (
                isinstance(source, ast.Constant) and isinstance(source.value, str)
            ):
                verb = name.rsplit(".", 1)[-1]
                self.hit(CODE_EVAL, node, f"{verb}() runs a value that is not a literal as code.", call=verb)

    def _is_builtin(self, func: ast.AST) -> bool:
        # a local `eval` bound by an import is not the builtin (e.g. `from asteval import eval`)
        return not (
            isinstance(func, ast.Name) and func.id in self.aliases and self.aliases[func.id] != func.id
        )

    def _torch_load(self, node: ast.Call, name: str) -> None:
        weights_only = _keyword(node, "weights_only")
        if weights_only is None:
            self.hit(
                CODE_UNSAFE_LOAD,
                node,
                f"{name}(...) without weights_only=True unpickles arbitrary objects with torch < 2.6 (and "
                "whenever TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD is set).",
                severity=Severity.MEDIUM,
                call=name,
                weights_only="default",
            )
        elif _is_const(weights_only.value, False):
            self.hit(
                CODE_UNSAFE_LOAD,
                node,
                f"{name}(..., weights_only=False) unpickles arbitrary objects: a malicious checkpoint runs code.",
                call=name,
                weights_only=False,
            )
        elif not _is_const(weights_only.value, True):
            self.hit(
                CODE_UNSAFE_LOAD,
                node,
                f"{name}(..., weights_only=<expression>) may unpickle arbitrary objects.",
                severity=Severity.MEDIUM,
                call=name,
                weights_only="expression",
            )

    def _yaml_load(self, node: ast.Call, name: str) -> None:
        loader_kw = _keyword(node, "Loader")
        loader = loader_kw.value if loader_kw is not None else (node.args[1] if len(node.args) > 1 else None)
        loader_name = self.qualname(loader) if loader is not None else None
        if loader_name in _YAML_SAFE_LOADERS:
            return
        severity = Severity.MEDIUM if loader_name in _YAML_FULL_LOADERS else None
        shown = loader_name or ("no Loader" if loader is None else "a computed Loader")
        self.hit(
            CODE_UNSAFE_YAML,
            node,
            f"{name}(...) with {shown} can build arbitrary Python objects; use yaml.safe_load.",
            severity=severity,
            call=name,
            loader=loader_name or "",
        )

    # secrets assigned to telling names: x_token = "...", f(api_key="..."), {"password": "..."}
    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._named_secret(target, node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._named_secret(node.target, node.value)
        self.generic_visit(node)

    def visit_keyword(self, node: ast.keyword) -> None:
        if node.arg:
            self._secret_value(node.arg, node.value)
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                self._secret_value(key.value, value)
        self.generic_visit(node)

    def _named_secret(self, target: ast.AST, value: ast.AST) -> None:
        if isinstance(target, ast.Name):
            self._secret_value(target.id, value)
        elif isinstance(target, ast.Attribute):
            self._secret_value(target.attr, value)
        elif (
            isinstance(target, ast.Subscript)
            and isinstance(target.slice, ast.Constant)
            and isinstance(target.slice.value, str)
        ):
            self._secret_value(target.slice.value, value)

    def _secret_value(self, name: str, value: ast.AST) -> None:
        if not _SECRET_NAME.search(name):
            return
        if (
            isinstance(value, ast.Constant)
            and isinstance(value.value, str)
            and _looks_assigned_secret(value.value)
        ):
            self.hit(
                CODE_SECRET,
                value,
                f"A high-entropy string is assigned to `{name}`: it looks like a hard-coded secret.",
                kind="high-entropy string",
                name=name,
                **_redacted(value.value),
            )


def _pattern_secrets(text: str) -> Iterator[_Hit]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        for spec in _SECRET_PATTERNS:
            for match in spec.pattern.finditer(line):
                secret = match.group(0)
                if spec.min_entropy and _entropy(secret) < spec.min_entropy:
                    continue
                yield _Hit(
                    CODE_SECRET,
                    lineno,
                    f"A {spec.kind} is written in the code.",
                    {"kind": spec.kind, **_redacted(secret)},
                )


def _our_hits(tree: ast.AST, text: str) -> tuple[list[_Hit], set[tuple[str, int]]]:
    """Our rule hits, and every ``(rule id, line)`` our rules judged (for dropping bandit's duplicates)."""
    visitor = _Visitor()
    visitor.visit(tree)
    hits = list(visitor.hits)
    seen = {(h.rule.id, h.line) for h in hits}
    for hit in _pattern_secrets(text):
        if (hit.rule.id, hit.line) not in seen:  # a token both matched and assigned to `token` is one finding
            seen.add((hit.rule.id, hit.line))
            hits.append(hit)
    return hits, seen | visitor.judged


def _parse(text: str, name: str) -> ast.Module:
    with warnings.catch_warnings():  # invalid escape sequences in the scanned code are not our warnings
        warnings.simplefilter("ignore")
        return ast.parse(text, filename=name)


# --- bandit ----------------------------------------------------------------------------------------------------


class _Bandit:
    """One bandit manager, fed source text through its per-file entry point."""

    def __init__(self) -> None:
        # stevedore, under bandit, warns about its own deprecated argument and logs an error for each bandit
        # output plugin whose extra is missing (we use none of them): both are muted while bandit loads
        plugin_log = logging.getLogger("stevedore.extension")
        mute = logging.Filter("garrison.muted")  # passes only records of a logger of that name: none here
        plugin_log.addFilter(mute)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                from bandit.core import config as b_config
                from bandit.core import manager as b_manager
        except ImportError:
            raise MissingDependencyError("bandit", extra="codescan") from None
        finally:
            plugin_log.removeFilter(mute)
        conf = b_config.BanditConfig()
        self._manager = b_manager.BanditManager(
            conf, "file", quiet=True, profile={"exclude": sorted(BANDIT_SKIPPED_TESTS)}
        )

    def issues(self, text: str, name: str) -> list[Any]:
        """bandit's issues in one source; raises :class:`_BanditFailed` when bandit gave up on it."""
        manager = self._manager
        manager.results = []
        skipped = len(manager.skipped)
        log = logging.getLogger("bandit.core.manager")
        mute = logging.Filter("garrison.muted")  # bandit logs its failures; we report them as incomplete
        log.addFilter(mute)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # _parse_file is bandit's per-source entry point (its CLI path reads files from disk itself)
                manager._parse_file(name, io.BytesIO(text.encode("utf-8", "surrogatepass")), [name])
        finally:
            log.removeFilter(mute)
        if len(manager.skipped) > skipped:
            raise _BanditFailed(str(manager.skipped[-1][1]))
        return list(manager.results)


class _BanditFailed(Exception):
    """bandit could not analyse a source that Python itself parses."""


def _bandit_hits(bandit: _Bandit, text: str, name: str) -> list[_Hit]:
    hits = []
    for issue in bandit.issues(text, name):
        test_id = str(issue.test_id)
        message = str(issue.text)
        if test_id in _BANDIT_QUOTES_SECRET:
            message = "Possible hard-coded password (bandit)."
        hits.append(
            _Hit(
                CODE_BANDIT,
                int(issue.lineno),
                f"{message} [{test_id}]",
                {
                    "test_id": test_id,
                    "test_name": str(issue.test),
                    "confidence": str(issue.confidence).lower(),
                },
                _BANDIT_SEVERITY.get(str(issue.severity).upper(), Severity.LOW),
            )
        )
    return hits


def _merge(ours: list[_Hit], covered: set[tuple[str, int]], theirs: list[_Hit]) -> list[_Hit]:
    kept = [
        h
        for h in theirs
        if not (
            (rule_id := _BANDIT_COVERED.get(h.evidence["test_id"])) is not None
            and (rule_id, h.line) in covered
        )
    ]
    return [*ours, *kept]


# --- notebooks -------------------------------------------------------------------------------------------------

_LINE_MAGIC = re.compile(r"^(\s*)[!%].*$")
_ASSIGNED_MAGIC = re.compile(r"^(\s*[A-Za-z_][\w.,\s]*=\s*)[!%].*$")
_HELP = re.compile(r"^(\s*)[\w.]+\?\??\s*$")
_PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})


def _cell_python(source: str) -> str | None:
    """A code cell as Python with IPython magics and shell lines blanked (line numbers kept); ``None`` when the
    cell is another language (``%%bash``, ``%%html``...)."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        magic = lines[0].lstrip()[2:].split(maxsplit=1)[0] if lines[0].strip() != "%%" else ""
        if magic not in _PYTHON_CELL_MAGICS:
            return None
        lines[0] = ""
    out = []
    for line in lines:
        if m := _ASSIGNED_MAGIC.match(line):
            out.append(f"{m.group(1)}None")
        elif (m := _LINE_MAGIC.match(line)) or (m := _HELP.match(line)):
            out.append(f"{m.group(1)}pass")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def _notebook_cells(text: str) -> list[tuple[int, str]]:
    """``(cell number from 1, source)`` of every code cell; raises ValueError for a file that is not a notebook."""
    data = json.loads(text)
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        raise ValueError("no `cells` list (not an nbformat 4 notebook)")
    out = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if isinstance(source, str):
            out.append((number, source))
    return out


# --- the scan --------------------------------------------------------------------------------------------------


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    found = [
        p
        for p in root.rglob("*")
        if p.suffix in (".py", ".ipynb")
        and p.is_file()
        and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(root).parts[:-1])
    ]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _display(root: Path, path: Path) -> str:
    if path == root:
        return str(root)
    rel = path.relative_to(root).as_posix()
    return rel if str(root) in ("", ".") else f"{root.as_posix().rstrip('/')}/{rel}"


def scan_code(
    root: Path,
    *,
    bandit: bool = True,
    progress: Callable[[str], None] | None = None,
) -> ScanResult:
    """Scan ``.py`` files and Jupyter notebooks (code cells) under ``root`` (or the one file ``root``).

    Hidden directories and ``__pycache__`` are skipped. A file that cannot be read or parsed is incomplete,
    never clean. Raises :class:`InputError` when ``root`` does not exist and :class:`MissingDependencyError`
    when ``bandit`` is asked for but not installed.
    """
    root = Path(root)
    if not root.exists():
        raise InputError("not found", path=root)
    analyser = _Bandit() if bandit else None
    subject = Subject(SubjectKind.CODE, name=str(root))
    findings: list[Finding] = []
    incomplete: list[Incomplete] = []
    files: list[ScannedFile] = []
    for path in _files(root):
        where = _display(root, path)
        if progress is not None:
            progress(where)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            incomplete.append(Incomplete(where, f"cannot read: {exc.strerror or exc}"))
            continue
        notebook = path.suffix == ".ipynb"
        files.append(
            ScannedFile(
                where, "notebook" if notebook else "python", len(raw), hashlib.sha256(raw).hexdigest()
            )
        )
        if len(raw) > _MAX_FILE_BYTES:
            incomplete.append(Incomplete(where, f"larger than {_MAX_FILE_BYTES} bytes; not scanned"))
            continue
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            incomplete.append(Incomplete(where, f"not UTF-8 text (byte {exc.start})"))
            continue
        if notebook:
            _scan_notebook(text, where, subject, analyser, findings, incomplete)
        else:
            _scan_unit(text, where, None, subject, analyser, findings, incomplete)
    return ScanResult(tuple(sorted(findings, key=Finding.sort_key)), tuple(incomplete), tuple(files))


def _scan_notebook(
    text: str,
    where: str,
    subject: Subject,
    analyser: _Bandit | None,
    findings: list[Finding],
    incomplete: list[Incomplete],
) -> None:
    try:
        cells = _notebook_cells(text)
    except (ValueError, RecursionError) as exc:
        incomplete.append(Incomplete(where, f"not a readable notebook: {str(exc).splitlines()[0][:200]}"))
        return
    for number, source in cells:
        python = _cell_python(source)
        if python is None:
            continue
        _scan_unit(python, where, number, subject, analyser, findings, incomplete)


def _symbol(hit: _Hit, lines: list[str], cell: int | None) -> str:
    """What the finding is about, independent of its line number: the check and a hash of the flagged source line,
    so triage survives edits elsewhere in the file."""
    source = lines[hit.line - 1].strip() if 0 < hit.line <= len(lines) else ""
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    check = str(hit.evidence.get("test_id") or hit.rule.id)
    return f"{'' if cell is None else f'cell{cell}:'}{check}:{digest}"


def _scan_unit(
    text: str,
    where: str,
    cell: int | None,
    subject: Subject,
    analyser: _Bandit | None,
    findings: list[Finding],
    incomplete: list[Incomplete],
) -> None:
    unit = where if cell is None else f"{where}:cell{cell}"
    try:
        tree = _parse(text, unit)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        line = getattr(exc, "lineno", None)
        at = f" at line {line}" if line else ""
        incomplete.append(Incomplete(unit, f"does not parse as Python{at}: {type(exc).__name__}"))
        return
    try:
        hits, judged = _our_hits(tree, text)
        if analyser is not None:
            hits = _merge(hits, judged, _bandit_hits(analyser, text, unit))
    except RecursionError:
        incomplete.append(Incomplete(unit, "nested too deeply to analyse"))
        return
    except _BanditFailed as exc:
        incomplete.append(Incomplete(unit, f"bandit could not scan it: {exc}"))
        return
    lines = text.splitlines()
    for hit in hits:
        evidence = dict(hit.evidence)
        if cell is not None:
            evidence.update(cell=cell, cell_line=hit.line)
        findings.append(
            hit.rule.finding(
                subject=subject,
                message=hit.message,
                location=where,
                symbol=_symbol(hit, lines, cell),
                # a notebook's line is inside a cell, not a line of the .ipynb file
                line=hit.line if cell is None else None,
                evidence=evidence,
                severity=hit.severity,
            )
        )
