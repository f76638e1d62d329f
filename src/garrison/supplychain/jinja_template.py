"""Static analysis of Jinja chat templates (GGUF metadata, tokenizer_config.json): constructs that reach Python
internals, the path from server-side template injection to code execution (GAR-SC-009).

Templates are parsed with jinja2's own parser (parsing executes nothing) and the syntax tree is walked:

* critical: attribute or item access to dunder names (``__class__``, ``__globals__``, ``__subclasses__``,
  ``__builtins__``, ``__init__``...) or to interpreter internals (``mro``, ``f_globals``, ``gi_frame``...), by
  ``.name``, ``["name"]``, ``|attr("name")`` or ``|map(attribute="name")``; attribute names computed at render
  time (``x[a ~ b]``, ``x|attr(y)``) from string building (``~``, ``+``, ``%``, ``|format``, ``|join``,
  ``|reverse``, ``|replace``...), the usual way to smuggle ``"__" ~ "class__"`` past a filter; ``%c``
  formatting of numbers (building ``_`` from 95).
* high: access to private names (``._x``) and to attributes that lead out of the template's data (``os``,
  ``popen``, ``eval``, ``__import__``, ``import_module``, ``builtins``, ``globals``...); string constants naming
  Python internals even where they are not yet used as an attribute.
* medium: a template jinja2 cannot parse. It is a finding, not an incomplete scan: other engines (llama.cpp's
  minja, Jinja forks) may accept what jinja2 refuses, and nobody can vouch for a template no one could read.

Chat templates need none of this: the benign templates of ChatML, Llama 3, Mistral and friends only read
``message['role']``-style keys, loop and concatenate literal text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser

from garrison.core.rules import SC_TEMPLATE
from garrison.core.severity import Severity
from garrison.supplychain.blob import Blob
from garrison.supplychain.context import ScanContext

__all__ = ["TemplateIssue", "analyze_template", "report_template_issues"]

MAX_TEMPLATE_CHARS = 4_000_000
_INTERNAL_ATTRS = frozenset(
    {
        "mro",
        "func_globals",
        "func_code",
        "func_closure",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "cr_code",
        "ag_code",
        "ag_frame",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_back",
        "f_code",
        "tb_frame",
        "tb_next",
        "im_class",
        "im_func",
        "im_self",
        "co_code",
        "co_consts",
        "co_names",
    }
)
_ESCAPE_ATTRS = frozenset(
    {
        "os",
        "sys",
        "popen",
        "system",
        "eval",
        "exec",
        "subprocess",
        "import_module",
        "builtins",
        "globals",
        "getattr",
        "check_output",
        "communicate",
        "load_module",
        "spawn",
        "modules",
        "environ",
        "open",
        "read_text",
        "write_text",
    }
)
_STRING_BUILDERS = frozenset(
    {
        "format",
        "join",
        "reverse",
        "replace",
        "string",
        "lower",
        "upper",
        "title",
        "capitalize",
        "center",
        "list",
        "first",
        "last",
        "batch",
        "slice",
        "urlencode",
    }
)
# Filters whose first positional argument is an attribute name.
_POSITIONAL_ATTRIBUTE = frozenset({"attr", "selectattr", "rejectattr", "groupby"})
_DUNDER = re.compile(r"__[A-Za-z][A-Za-z0-9_]*__")


@dataclass(frozen=True, slots=True)
class TemplateIssue:
    """One construct of a template that reaches Python internals, with the template line it is on."""

    severity: Severity
    message: str
    line: int | None = None


class _GenerationTag(Extension):
    """``{% generation %}...{% endgeneration %}`` (transformers' assistant-mask tag), so templates that use it
    parse; its body is walked like any other."""

    tags = {"generation"}  # noqa: RUF012 - jinja2's Extension API declares tags as a class attribute

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


def _environment() -> jinja2.Environment:
    # The same extensions transformers enables when it renders chat templates.
    # Parsing only: nothing is ever rendered (autoescape just keeps linters quiet).
    return jinja2.Environment(autoescape=True, extensions=["jinja2.ext.loopcontrols", _GenerationTag])


def analyze_template(source: str) -> list[TemplateIssue]:
    """Every construct of a Jinja template that reaches Python internals (see the module docstring)."""
    if len(source) > MAX_TEMPLATE_CHARS:
        return [
            TemplateIssue(Severity.MEDIUM, f"template of {len(source)} characters is too long to analyse")
        ]
    try:
        tree = _environment().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return [TemplateIssue(Severity.MEDIUM, f"template cannot be parsed: {exc.message}", exc.lineno)]
    except RecursionError:
        return [TemplateIssue(Severity.MEDIUM, "template is nested too deeply to parse")]
    issues: list[TemplateIssue] = []
    for node in _walk(tree):
        issues.extend(_check(node))
    return _dedupe(issues)


def _walk(tree: nodes.Node) -> Iterator[nodes.Node]:
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.iter_child_nodes())


def _name_issue(name: str, how: str, line: int | None) -> TemplateIssue | None:
    if name.startswith("__") or name in _INTERNAL_ATTRS:
        return TemplateIssue(Severity.CRITICAL, f"{how} {name!r} reaches Python internals", line)
    if name.startswith("_"):
        return TemplateIssue(Severity.HIGH, f"{how} private name {name!r}", line)
    if name in _ESCAPE_ATTRS:
        return TemplateIssue(Severity.HIGH, f"{how} {name!r} leads out of the template's data", line)
    return None


def _check(node: nodes.Node) -> list[TemplateIssue]:
    line = getattr(node, "lineno", None)
    out: list[TemplateIssue | None] = []
    if isinstance(node, nodes.Getattr):
        out.append(_name_issue(node.attr, "attribute", line))
    elif isinstance(node, nodes.Getitem):
        if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            out.append(_name_issue(node.arg.value, "item", line))
        elif _builds_string(node.arg):
            out.append(TemplateIssue(Severity.CRITICAL, "item name computed by string building", line))
    elif isinstance(node, nodes.Filter):
        out.extend(_filter_issues(node, line))
    elif isinstance(node, nodes.Const) and isinstance(node.value, str):
        match = _DUNDER.search(node.value)
        if match:
            out.append(TemplateIssue(Severity.HIGH, f"string {match.group()!r} names Python internals", line))
    elif isinstance(node, nodes.Mod) and _c_format(node.left):
        out.append(TemplateIssue(Severity.CRITICAL, "'%c' formatting builds characters from numbers", line))
    elif isinstance(node, nodes.Name) and _DUNDER.fullmatch(node.name):
        out.append(TemplateIssue(Severity.CRITICAL, f"variable {node.name!r} reaches Python internals", line))
    return [i for i in out if i is not None]


def _filter_issues(node: nodes.Filter, line: int | None) -> list[TemplateIssue | None]:
    out: list[TemplateIssue | None] = []
    names = [kw.value for kw in node.kwargs if kw.key == "attribute"]
    if node.name in _POSITIONAL_ATTRIBUTE and node.args:
        names.append(node.args[0])
    for arg in names:
        if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
            out.append(_name_issue(arg.value, f"|{node.name} of", line))
        elif node.name == "attr" or _builds_string(arg):
            out.append(
                TemplateIssue(Severity.CRITICAL, f"|{node.name} with a name computed at render time", line)
            )
    if node.name == "format" and node.node is not None and _c_format(node.node):
        out.append(TemplateIssue(Severity.CRITICAL, "'%c' formatting builds characters from numbers", line))
    return out


def _c_format(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Const) and isinstance(node.value, str) and "%c" in node.value


def _builds_string(node: nodes.Node) -> bool:
    for inner in _walk(node):
        if isinstance(inner, nodes.Concat | nodes.Mod | nodes.Mul):
            return True
        if isinstance(inner, nodes.Add) and any(
            isinstance(side, nodes.Const) and isinstance(side.value, str)
            for side in (inner.left, inner.right)
        ):
            return True
        if isinstance(inner, nodes.Filter) and inner.name in _STRING_BUILDERS:
            return True
    return False


def _dedupe(issues: list[TemplateIssue]) -> list[TemplateIssue]:
    seen: set[tuple[str, int | None]] = set()
    out = []
    for issue in sorted(issues, key=lambda i: (i.line or 0, -i.severity.rank, i.message)):
        if (issue.message, issue.line) not in seen:
            seen.add((issue.message, issue.line))
            out.append(issue)
    return out


def report_template_issues(
    ctx: ScanContext, where: Blob | str, templates: dict[str, list[TemplateIssue]], *, source: str
) -> None:
    """Report the issues of a file's templates (by template name) as one GAR-SC-009 finding."""
    flat = [(name, issue) for name, issues in templates.items() for issue in issues]
    if not flat:
        return
    worst = max((issue.severity for _, issue in flat), key=lambda s: s.rank)
    shown = "; ".join(f"{issue.message} ({name}, line {issue.line})" for name, issue in flat[:5])
    more = f" (+{len(flat) - 5} more)" if len(flat) > 5 else ""
    title = "cannot be analysed" if worst is Severity.MEDIUM else "reaches Python internals"
    ctx.report(
        SC_TEMPLATE,
        where,
        f"Chat template in {source} {title}: {shown}{more}",
        severity=worst,
        evidence={
            "issues": [
                {
                    "template": name,
                    "severity": issue.severity.value,
                    "message": issue.message,
                    "line": issue.line,
                }
                for name, issue in flat[:100]
            ],
            "count": len(flat),
        },
    )
