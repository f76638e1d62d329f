"""The allowlist and denylist that judge every global a pickle imports."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from garrison.core.errors import ConfigError
from garrison.supplychain.pickle_policy import (
    Allowlist,
    Verdict,
    default_allowlist,
    parse_name,
    read_allowlist_file,
)

sys.path.insert(0, str(Path(__file__).parent))
import allowlist_sources

ALLOW = default_allowlist()


@pytest.mark.parametrize(
    ("module", "qualname"),
    [
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy._core.multiarray", "scalar"),
        ("scipy.sparse._csr", "csr_matrix"),
        ("sklearn.linear_model._logistic", "LogisticRegression"),
        ("sklearn.tree._tree", "Tree"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch.nn.modules.container", "Sequential"),
        ("torch.optim.adam", "Adam"),
        ("torch.optim.lr_scheduler", "StepLR"),
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("datetime", "datetime"),
        ("pandas", "DataFrame"),
        ("pandas.core.internals.managers", "BlockManager"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("copyreg", "_reconstructor"),
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ],
)
def test_known_constructors_are_safe(module: str, qualname: str) -> None:
    assert ALLOW.classify(module, qualname)[0] is Verdict.SAFE


@pytest.mark.parametrize(
    ("module", "qualname"),
    [
        ("os", "system"),
        ("os.path", "join"),
        ("posix", "system"),
        ("nt", "system"),
        ("subprocess", "Popen"),
        ("builtins", "getattr"),
        ("builtins", "eval"),
        ("builtins", "__import__"),
        ("builtins", "open"),
        ("builtins", "vars"),
        ("runpy", "run_module"),
        ("importlib.util", "spec_from_file_location"),
        ("pkgutil", "resolve_name"),
        ("pydoc", "locate"),
        ("operator", "itemgetter"),
        ("_operator", "attrgetter"),
        ("marshal", "loads"),
        ("types", "CodeType"),
        ("code", "InteractiveConsole"),
        ("timeit", "Timer"),
        ("cProfile", "runctx"),
        ("pip._internal.cli.main", "main"),
        ("torch.storage_extra", "eval"),
        ("collections", "os.system"),
        ("sklearn.base", "__builtins__"),
        ("mylib", "Model.__reduce__"),
    ],
)
def test_code_execution_and_indirection_are_dangerous(module: str, qualname: str) -> None:
    verdict, reason = ALLOW.classify(module, qualname)
    assert verdict is Verdict.DANGEROUS
    assert reason


def test_everything_else_is_unknown_and_entries_are_never_prefixes() -> None:
    assert ALLOW.classify("mylib.models", "Net")[0] is Verdict.UNKNOWN
    assert ALLOW.classify("builtins", "print")[0] is Verdict.UNKNOWN
    assert ALLOW.classify("collections", "OrderedDict.fromkeys")[0] is Verdict.UNKNOWN
    assert ALLOW.classify("numpy", "dtype.mro")[0] is Verdict.UNKNOWN


def test_no_allowlisted_entry_is_denied() -> None:
    for module, qualname in ALLOW.entries:
        assert ALLOW.classify(module, qualname)[0] is Verdict.SAFE, (module, qualname)


def test_extended_parses_both_spellings_and_denylist_still_wins() -> None:
    extended = ALLOW.extended(["mylib.models.Net", "mylib.models:Outer.Inner", "os.system"])
    assert extended.classify("mylib.models", "Net")[0] is Verdict.SAFE
    assert extended.classify("mylib.models", "Outer.Inner")[0] is Verdict.SAFE
    assert extended.classify("os", "system")[0] is Verdict.DANGEROUS
    assert ALLOW.classify("mylib.models", "Net")[0] is Verdict.UNKNOWN  # the original is unchanged
    assert parse_name(" a.b:C.d ") == ("a.b", "C.d")


@pytest.mark.parametrize("bad", ["", "noDots", "a.b:", ":C", "a..b.C", "a.b.C()", "1a.B"])
def test_malformed_entries_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError, match="allowlist entry"):
        Allowlist(frozenset()).extended([bad])


def test_verdict_order() -> None:
    assert Verdict.SAFE.worst(Verdict.UNKNOWN) is Verdict.UNKNOWN
    assert Verdict.DANGEROUS.worst(Verdict.SAFE) is Verdict.DANGEROUS
    assert Verdict.SAFE.rank < Verdict.UNKNOWN.rank < Verdict.DANGEROUS.rank


def _committed(name: str) -> set[tuple[str, str]]:
    return read_allowlist_file((allowlist_sources.ALLOWLISTS / name).read_text(encoding="utf-8"))


def _as_pairs(lines: set[str]) -> set[tuple[str, str]]:
    return {parse_name(line) for line in lines}


def test_torch_weights_only_list_matches_the_installed_torch() -> None:
    pytest.importorskip("torch")
    assert _committed("torch_weights_only.txt") == _as_pairs(allowlist_sources.torch_weights_only())


def test_torch_module_list_matches_the_installed_torch() -> None:
    pytest.importorskip("torch")
    assert _committed("torch_modules.txt") == _as_pairs(allowlist_sources.torch_modules())


def test_every_scikit_learn_estimator_and_its_internals_are_allowlisted() -> None:
    missing = (
        _as_pairs(allowlist_sources.sklearn_estimators() | allowlist_sources.sklearn_internals())
        - ALLOW.entries
    )
    assert not missing


def test_numpy_scalar_types_and_scipy_sparse_classes_are_allowlisted() -> None:
    assert not _as_pairs(allowlist_sources.numpy_names()) - ALLOW.entries
    assert not _as_pairs(allowlist_sources.scipy_names()) - ALLOW.entries
