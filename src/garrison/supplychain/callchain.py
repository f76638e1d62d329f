"""The call expressions a pickle would evaluate, reconstructed symbolically, and their rendering as text.

Constants stay plain Python values (str, int, float, bytes, None, bool, tuples of values); everything the pickle
machine cannot know without running code is a node: a global reference, a call, a container it filled, or an
opaque value. :func:`render` writes an expression the way Python source would, with long arguments cut short:
``getattr(__import__('os'), 'system')('id')``.
"""

from __future__ import annotations

from typing import Any

from garrison.supplychain.pickle_policy import Verdict

__all__ = ["Call", "Container", "Name", "Opaque", "Text", "render"]


class Name:
    """A global the pickle imports (GLOBAL, STACK_GLOBAL, INST, EXT): ``module.qualname``."""

    __slots__ = ("module", "qualname", "verdict")

    def __init__(self, module: str, qualname: str, verdict: Verdict) -> None:
        self.module = module
        self.qualname = qualname
        self.verdict = verdict


class Call:
    """``func(*args, **kwargs)``; ``method`` names a method call on ``func`` instead (BUILD -> ``__setstate__``).

    ``verdict`` is the worst verdict of the callable's parts; ``cls_verdict`` is the verdict on the class of the
    object the call builds (for ``copyreg._reconstructor(cls, ...)`` that of ``cls``); ``resolves_to`` is the
    ``(module, qualname)`` the result denotes when it is a module or an attribute reached by name; ``cls`` names
    the class of the object built.
    """

    __slots__ = (
        "args", "cls", "cls_verdict", "func", "kwargs", "method", "partial_of", "resolves_to", "state", "verdict",
    )  # fmt: skip

    def __init__(
        self,
        func: Any,
        args: Any,
        kwargs: Any = None,
        *,
        verdict: Verdict = Verdict.UNKNOWN,
        method: str | None = None,
    ) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.method = method
        self.verdict = verdict
        self.cls_verdict = verdict
        self.cls: tuple[str, str] = ("<dynamic>", "<dynamic>")
        self.resolves_to: tuple[str, str] | None = None
        self.partial_of: Any = None
        self.state: Any = None


class Container:
    """A list, dict, set or frozenset the pickle fills; only the first items are kept, ``n`` counts them all."""

    __slots__ = ("dunder_keys", "items", "kind", "n")
    CAP = 64

    def __init__(self, kind: str, items: list[Any] | None = None) -> None:
        self.kind = kind  # "list", "dict" (items are (key, value) pairs), "set", "frozenset"
        if items:
            self.items: list[Any] = items[: self.CAP]
            self.n = len(items)
        else:
            self.items = []
            self.n = 0
        self.dunder_keys: set[str] | None = None

    def note_keys(self, keys: list[Any]) -> None:
        """Remember the special (dunder) string keys among keys that are not kept as items."""
        for key in keys:
            if type(key) is str and key[:2] == "__" and key[-2:] == "__":
                if self.dunder_keys is None:
                    self.dunder_keys = set()
                self.dunder_keys.add(key)

    def special_keys(self) -> list[str]:
        """Every dunder string key the dict received, kept or not."""
        kept = {k for k, _ in self.items if type(k) is str and k[:2] == "__" and k[-2:] == "__"}
        return sorted(kept | (self.dunder_keys or set()))

    def get(self, key: str) -> Any:
        """The value stored under ``key`` in a dict container (first kept items only), else None."""
        for k, v in self.items:
            if k == key:
                return v
        return None


class Opaque:
    """A value the machine cannot know statically (persistent id, out-of-band buffer, array data...)."""

    __slots__ = ("label",)

    def __init__(self, label: str) -> None:
        self.label = label


class Text:
    """A string too long to keep: its length, where it lies in the stream, and the start of it."""

    __slots__ = ("is_bytes", "length", "offset", "preview")

    def __init__(self, offset: int, length: int, preview: str, *, is_bytes: bool = False) -> None:
        self.offset = offset
        self.length = length
        self.preview = preview
        self.is_bytes = is_bytes


def render(value: Any, *, max_depth: int = 4, max_str: int = 40, max_items: int = 6) -> str:
    """Python-like source text for an expression, strings cut to ``max_str`` characters, nesting to
    ``max_depth`` levels and containers to ``max_items`` items."""
    return _Renderer(max_str, max_items).render(value, max_depth)


class _Renderer:
    def __init__(self, max_str: int, max_items: int) -> None:
        self.max_str = max_str
        self.max_items = max_items

    def render(self, value: Any, depth: int) -> str:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes | bytearray):
            return self.text(bytes(value))
        if value is None or isinstance(value, bool | int | float | complex):
            return repr(value)
        if isinstance(value, Name):
            return value.qualname if value.module == "builtins" else f"{value.module}.{value.qualname}"
        if depth <= 0:
            return "..."
        if isinstance(value, tuple):
            inner = self.seq(value, len(value), depth - 1)
            return f"({inner},)" if len(value) == 1 else f"({inner})"
        if isinstance(value, Call):
            return self.call(value, depth)
        if isinstance(value, Container):
            return self.container(value, depth)
        if isinstance(value, Text):
            cut = value.preview[: self.max_str]
            return f"{'b' if value.is_bytes else ''}{cut!r}...<{value.length} {'bytes' if value.is_bytes else 'chars'}>"
        if isinstance(value, Opaque):
            return f"<{value.label}>"
        return f"<{type(value).__name__}>"

    def text(self, value: str | bytes) -> str:
        if len(value) <= self.max_str:
            return repr(value)
        return f"{value[: self.max_str]!r}..."

    def seq(self, items: Any, n: int, depth: int) -> str:
        shown = [self.render(item, depth) for item in list(items)[: self.max_items]]
        if n > len(shown):
            shown.append("...")
        return ", ".join(shown)

    def call(self, call: Call, depth: int) -> str:
        func = self.render(call.func, depth - 1)
        if call.method is not None:
            func = f"{func}.{call.method}"
        args = call.args if isinstance(call.args, tuple) else (call.args,)
        parts = [self.seq(args, len(args), depth - 1)] if args else []
        if isinstance(call.kwargs, Container) and call.kwargs.items:
            kw = ", ".join(
                f"{k}={self.render(v, depth - 1)}"
                if isinstance(k, str)
                else f"**{{{self.render(k, 0)}: ...}}"
                for k, v in call.kwargs.items[: self.max_items]
            )
            parts.append(kw)
        return f"{func}({', '.join(parts)})"

    def container(self, value: Container, depth: int) -> str:
        if value.kind == "dict":
            shown = [
                f"{self.render(k, depth - 1)}: {self.render(v, depth - 1)}"
                for k, v in value.items[: self.max_items]
            ]
            if value.n > len(shown):
                shown.append("...")
            return "{" + ", ".join(shown) + "}"
        inner = self.seq(value.items, value.n, depth - 1)
        if value.kind == "list":
            return f"[{inner}]"
        if value.kind == "set":
            return f"{{{inner}}}" if value.n else "set()"
        return f"frozenset({{{inner}}})"
