"""Rendering reconstructed call expressions as Python-like text."""

from __future__ import annotations

from garrison.supplychain.callchain import Call, Container, Name, Opaque, Text, render
from garrison.supplychain.pickle_policy import Verdict

GETATTR = Name("builtins", "getattr", Verdict.DANGEROUS)
IMPORT = Name("builtins", "__import__", Verdict.DANGEROUS)


def test_nested_call_chain() -> None:
    system = Call(GETATTR, (Call(IMPORT, ("os",)), "system"))
    assert render(Call(system, ("id",))) == "getattr(__import__('os'), 'system')('id')"


def test_module_qualified_names_and_methods() -> None:
    ordered = Call(Name("collections", "OrderedDict", Verdict.SAFE), ())
    assert render(ordered) == "collections.OrderedDict()"
    build = Call(ordered, ({"a": 1},), method="__setstate__")
    assert render(build) == "collections.OrderedDict().__setstate__(<dict>)"


def test_strings_are_cut_and_depth_is_limited() -> None:
    long = "x" * 100
    out = render(Call(Name("os", "system", Verdict.DANGEROUS), (long,)))
    assert out == f"os.system('{'x' * 40}'...)"
    deep: object = "leaf"
    for _ in range(10):
        deep = (deep,)
    assert "..." in render(deep, max_depth=3)
    assert render(Call(GETATTR, ("a",)), max_str=0) == "getattr(''...)"


def test_containers_opaque_values_and_long_text() -> None:
    items = Container("list", list(range(10)))
    assert render(items) == "[0, 1, 2, 3, 4, 5, ...]"
    mapping = Container("dict")
    mapping.items.extend([("a", 1), ("b", b"z")])
    mapping.n = 2
    assert render(mapping) == "{'a': 1, 'b': b'z'}"
    assert render(Container("set")) == "set()"
    assert render(Container("frozenset", [1])) == "frozenset({1})"
    assert render(Opaque("persistent")) == "<persistent>"
    assert render(Text(0, 10_000, "abc")) == "'abc'...<10000 chars>"
    assert render(Text(0, 9, "", is_bytes=True)) == "b''...<9 bytes>"
    assert render((1,)) == "(1,)"
    assert render((None, True, 1.5)) == "(None, True, 1.5)"
    kwargs = Container("dict")
    kwargs.items.append(("shell", True))
    assert (
        render(Call(Name("subprocess", "run", Verdict.DANGEROUS), ("ls",), kwargs))
        == "subprocess.run('ls', shell=True)"
    )
