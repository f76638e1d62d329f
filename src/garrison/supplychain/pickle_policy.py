"""Which globals a pickle may import: an allowlist of exact names, a denylist of code-execution gadgets.

A pickle can call any importable callable. Garrison decides by allowlist: constructors and functions known to
run no user code pass (:attr:`Verdict.SAFE`); callables that execute code, import modules, reach attributes by
name or touch the system are :attr:`Verdict.DANGEROUS`; everything else is :attr:`Verdict.UNKNOWN`. The denylist
wins over the allowlist, and allowlist entries are exact ``module``/``qualname`` pairs, never prefixes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources

from garrison.core.errors import ConfigError

__all__ = ["ALLOWLIST_FILES", "Allowlist", "Verdict", "default_allowlist", "parse_name"]


class Verdict(StrEnum):
    """How dangerous importing or calling a global is."""

    SAFE = "safe"
    UNKNOWN = "unknown"
    DANGEROUS = "dangerous"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def worst(self, other: Verdict) -> Verdict:
        """The more dangerous of two verdicts."""
        return self if _RANK[self] >= _RANK[other] else other


_RANK = {Verdict.SAFE: 0, Verdict.UNKNOWN: 1, Verdict.DANGEROUS: 2}

# The allowlist data files shipped in garrison/supplychain/allowlists/, one "module:qualname" per line.
ALLOWLIST_FILES = (
    "python.txt",
    "numpy.txt",
    "scipy.txt",
    "sklearn.txt",
    "pandas.txt",
    "torch_weights_only.txt",
    "torch_modules.txt",
    "joblib.txt",
)

# Modules (and all their submodules) whose every attribute runs code, imports, reaches the system or the network.
_DENIED_MODULES = frozenset(
    {
        "os", "posix", "nt", "posixpath", "ntpath", "genericpath", "subprocess", "_posixsubprocess", "pty", "tty",
        "termios", "fcntl", "shutil", "socket", "_socket", "socketserver", "ssl", "select", "selectors",
        "ctypes", "_ctypes", "cffi", "sys", "importlib", "imp", "zipimport", "runpy", "pkgutil", "pydoc",
        "operator", "_operator", "marshal", "code", "codeop", "timeit", "cProfile", "profile", "_lsprof",
        "pstats", "pdb", "bdb", "trace", "tracemalloc", "faulthandler", "pip", "setuptools", "distutils",
        "_distutils_hack", "pkg_resources", "ensurepip", "venv", "webbrowser", "multiprocessing",
        "_multiprocessing", "concurrent", "asyncio", "threading", "_thread", "signal", "pickle", "_pickle",
        "pickletools", "copy", "dill", "cloudpickle", "shelve", "dbm", "tempfile", "glob", "inspect", "gc",
        "mmap", "resource", "platform", "sysconfig", "site", "http", "urllib", "urllib3", "requests", "httpx",
        "aiohttp", "ftplib", "smtplib", "telnetlib", "poplib", "imaplib", "nntplib", "xmlrpc", "sqlite3",
        "tarfile", "zipfile", "logging", "yaml", "jinja2", "IPython", "ipykernel", "_winapi", "winreg",
        "msvcrt", "_io", "io", "builtins.__dict__", "numpy.f2py", "numpy.distutils", "numpy.testing",
        "numpy.ctypeslib", "numpy.lib.format", "numpy.lib.npyio", "numpy.lib._npyio_impl", "numpy.lib.utils",
        "numpy._utils", "torch.hub", "torch.jit", "torch._jit_internal", "torch.package", "torch.classes",
        "torch.ops", "torch._ops", "torch.library", "torch.fx", "torch.export", "torch._export", "torch._dynamo",
        "torch._inductor", "torch.compiler", "torch.distributed", "torch.multiprocessing", "torch.testing",
        "torch.utils.cpp_extension", "torch.cuda.memory", "torch.onnx",
        "torch._C._jit_tree_views", "pandas.io", "pandas.core.computation", "joblib.parallel",
        "joblib._parallel_backends", "joblib.externals", "sklearn.utils._testing", "scipy.weave",
    }
)  # fmt: skip
# Module names whose appearance in an attribute walk (a dotted qualname) reaches the dangerous module itself,
# e.g. ("collections", "os.system") or ("sklearn.base", "sys.modules").
_DENIED_SEGMENTS = frozenset(
    {
        "os", "posix", "nt", "sys", "subprocess", "builtins", "__builtins__", "__builtin__", "importlib", "runpy",
        "pty", "shutil", "socket", "ctypes", "marshal", "pickle", "_pickle", "operator", "_operator", "code",
        "codeop", "pdb", "multiprocessing", "asyncio", "threading", "webbrowser", "pip", "setuptools", "timeit",
        "cProfile", "profile", "pkgutil", "pydoc", "types", "inspect", "gc", "io", "_io",
    }
)  # fmt: skip
# Callable names that are a code-execution or indirection gadget in whichever module they live.
_DENIED_NAMES = frozenset(
    {
        "eval", "exec", "execfile", "compile", "__import__", "import_module", "getattr", "setattr", "delattr",
        "system", "popen", "popen2", "popen3", "popen4", "spawn", "spawnl", "spawnle", "spawnlp", "spawnlpe",
        "spawnv", "spawnve", "spawnvp", "spawnvpe", "execl", "execle", "execlp", "execlpe", "execv", "execve",
        "execvp", "execvpe", "fork", "forkpty", "run_path", "run_module", "resolve_name", "locate",
        "attrgetter", "methodcaller", "load_module", "exec_module", "runstring", "runcode", "runsource",
        "interact", "breakpoint", "set_trace", "getoutput", "getstatusoutput", "check_output", "check_call",
        "call", "Popen", "load_inline", "_load_local", "unsafe_load", "full_load", "load_library",
    }
)  # fmt: skip
# Exact (module, qualname) pairs that are dangerous although their module is not.
_DENIED_PAIRS = frozenset(
    {
        ("builtins", "eval"), ("builtins", "exec"), ("builtins", "compile"), ("builtins", "open"),
        ("builtins", "__import__"), ("builtins", "getattr"), ("builtins", "setattr"), ("builtins", "delattr"),
        ("builtins", "globals"), ("builtins", "locals"), ("builtins", "vars"), ("builtins", "breakpoint"),
        ("builtins", "input"), ("builtins", "help"), ("builtins", "exit"), ("builtins", "quit"),
        ("builtins", "apply"), ("builtins", "execfile"), ("builtins", "reload"), ("builtins", "__build_class__"),
        ("builtins", "__loader__"), ("builtins", "__spec__"), ("builtins", "memoryview"), ("builtins", "super"),
        ("types", "FunctionType"), ("types", "LambdaType"), ("types", "CodeType"), ("types", "MethodType"),
        ("types", "ModuleType"), ("types", "BuiltinFunctionType"), ("types", "BuiltinMethodType"),
        ("types", "new_class"), ("types", "prepare_class"), ("types", "coroutine"), ("types", "CellType"),
        ("types", "FrameType"), ("types", "GeneratorType"), ("types", "MethodWrapperType"),
        ("functools", "reduce"), ("functools", "singledispatch"), ("functools", "wraps"),
        ("numpy", "load"), ("numpy", "loads"), ("numpy", "loadtxt"), ("numpy", "genfromtxt"),
        ("numpy", "fromfile"), ("numpy", "save"), ("numpy", "savez"), ("numpy", "tofile"),
        ("numpy.core.multiarray", "loads"), ("numpy._core.multiarray", "loads"), ("numpy.ma", "loads"),
        ("numpy.ma.core", "loads"), ("torch", "load"), ("torch", "save"), ("torch.serialization", "load"),
        ("torch.serialization", "_load"), ("torch.serialization", "_legacy_load"),
        ("torch.serialization", "save"), ("torch", "compile"), ("torch._C", "_jit_pass_inline"),
        ("torch._C", "import_ir_module"), ("torch._C", "import_ir_module_from_buffer"),
        ("torch._C", "_load_for_lite_interpreter"), ("torch.utils", "cpp_extension"),
        ("joblib", "load"), ("joblib.numpy_pickle", "load"), ("joblib", "Parallel"), ("joblib", "delayed"),
        ("pandas", "read_pickle"), ("pandas", "eval"), ("pandas", "read_csv"), ("pandas", "read_parquet"),
        ("pandas", "to_pickle"), ("scipy.io", "loadmat"), ("sklearn.utils", "_print_elapsed_time"),
        ("uuid", "_get_command_stdout"), ("uuid", "_popen"), ("ctypes.util", "find_library"),
    }
)  # fmt: skip
_DUNDER = re.compile(r"__\w+__")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def parse_name(name: str) -> tuple[str, str]:
    """``"pkg.mod.Class"`` (split at the last dot) or ``"pkg.mod:Class.attr"`` -> ``(module, qualname)``.

    Raises ConfigError for anything that is not a dotted Python name.
    """
    text = name.strip()
    if ":" in text:
        module, _, qualname = text.partition(":")
    else:
        module, _, qualname = text.rpartition(".")
    if not module or not qualname or not _NAME.fullmatch(module) or not _NAME.fullmatch(qualname):
        raise ConfigError(
            f"allowlist entry {name!r} is not a 'module.qualname' (or 'module:qualname') name",
            key="scan.allowlist",
        )
    return module, qualname


@dataclass(frozen=True)
class Allowlist:
    """Exact ``(module, qualname)`` pairs a pickle may import and call; never module prefixes."""

    entries: frozenset[tuple[str, str]]
    _cache: dict[tuple[str, str], tuple[Verdict, str]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def extended(self, names: Iterable[str]) -> Allowlist:
        """A new allowlist with ``names`` (``"pkg.mod.Class"`` or ``"pkg.mod:Class.attr"``) added."""
        added = frozenset(parse_name(name) for name in names)
        return Allowlist(self.entries | added)

    def classify(self, module: str, qualname: str) -> tuple[Verdict, str]:
        """The verdict on importing ``module.qualname``, with a short reason; the denylist wins."""
        key = (module, qualname)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._classify(module, qualname)
            if len(self._cache) < 100_000:
                self._cache[key] = hit
        return hit

    def _classify(self, module: str, qualname: str) -> tuple[Verdict, str]:
        denied = denial_reason(module, qualname)
        if denied is not None:
            return Verdict.DANGEROUS, denied
        if (module, qualname) in self.entries:
            return Verdict.SAFE, "on the allowlist"
        if any(_DUNDER.fullmatch(part) for part in qualname.split(".")):
            return Verdict.DANGEROUS, "reaches a special (dunder) attribute"
        return Verdict.UNKNOWN, "not on the allowlist"


def denial_reason(module: str, qualname: str) -> str | None:
    """Why importing ``module.qualname`` amounts to code execution or indirection, or None when it does not."""
    if (module, qualname) in _DENIED_PAIRS:
        return "known code-execution or indirection callable"
    mod_parts = module.split(".")
    qual_parts = qualname.split(".")
    path = mod_parts + qual_parts
    for i in range(1, len(path) + 1):
        prefix = ".".join(path[:i])
        if prefix in _DENIED_MODULES:
            what = prefix if i <= len(mod_parts) else f"{module}.{qualname}"
            return f"reaches {what}, a module that runs code or touches the system"
        if i > len(mod_parts) and (".".join(path[: i - 1]), path[i - 1]) in _DENIED_PAIRS:
            return f"reaches {prefix}, a known code-execution or indirection callable"
    if qual_parts[-1] in _DENIED_NAMES:
        return f"{qual_parts[-1]} is a code-execution or indirection callable"
    if len(qual_parts) > 1 and any(part in _DENIED_SEGMENTS for part in qual_parts):
        return "an attribute walk that reaches a code-execution module"
    return None


@cache
def default_allowlist() -> Allowlist:
    """The allowlist shipped with Garrison: Python pure constructors, numpy, scipy, scikit-learn, pandas, torch
    (what ``torch.load(weights_only=True)`` allows plus torch's own layers, optimizers and schedulers), joblib."""
    entries: set[tuple[str, str]] = set()
    folder = resources.files("garrison.supplychain") / "allowlists"
    for name in ALLOWLIST_FILES:
        entries.update(read_allowlist_file((folder / name).read_text(encoding="utf-8")))
    return Allowlist(frozenset(entries))


def read_allowlist_file(text: str) -> set[tuple[str, str]]:
    """Entries of an allowlist data file: one ``module:qualname`` per line, ``#`` comments."""
    out: set[tuple[str, str]] = set()
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            out.add(parse_name(line))
    return out
