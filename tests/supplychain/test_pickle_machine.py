"""The symbolic pickle machine: every technique family is caught, real libraries' pickles are clean, and no input
makes it raise."""

from __future__ import annotations

import io
import pickle
import pickletools
import struct
import time
import warnings
from collections import OrderedDict
from typing import Any

import numpy as np
import pickles as pk
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.supplychain.pickle_machine import PickleAnalysis, analyze_pickle
from garrison.supplychain.pickle_policy import Allowlist, Verdict, default_allowlist

ALLOW = default_allowlist()


def analyze(data: bytes, **kwargs: Any) -> PickleAnalysis:
    return analyze_pickle(data, allowlist=ALLOW, **kwargs)


def names(analysis: PickleAnalysis, verdict: Verdict) -> set[str]:
    return {f"{c.module}.{c.qualname}" for c in analysis.calls if c.verdict is verdict}


def assert_clean(data: bytes) -> None:
    analysis = analyze(data)
    bad = [c for c in analysis.calls if c.verdict is not Verdict.SAFE]
    assert not bad, bad
    assert analysis.errors == ()
    assert analysis.n_pickles >= 1


# ------------------------------------------------------------------------------------------------ denylist gaps
@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("os", "getcwd"),
        ("posix", "getcwd"),
        ("nt", "getcwd"),
        ("subprocess", "getoutput"),
        ("runpy", "run_path"),
        ("runpy", "_run_code"),
        ("cProfile", "run"),
        ("profile", "run"),
        ("timeit", "timeit"),
        ("code", "InteractiveInterpreter"),
        ("codeop", "compile_command"),
        ("pip", "main"),
        ("pip._internal", "main"),
        ("pdb", "run"),
        ("trace", "Trace"),
        ("webbrowser", "open"),
        ("pty", "spawn"),
        ("shutil", "rmtree"),
        ("ctypes", "CDLL"),
        ("importlib", "import_module"),
        ("pkgutil", "resolve_name"),
        ("pydoc", "locate"),
        ("pydoc", "pipepager"),
        ("operator", "attrgetter"),
        ("_operator", "methodcaller"),
        ("marshal", "loads"),
        ("types", "FunctionType"),
        ("builtins", "eval"),
        ("builtins", "exec"),
        ("builtins", "compile"),
        ("builtins", "open"),
        ("builtins", "__import__"),
        ("builtins", "breakpoint"),
        ("numpy.testing._private.utils", "runstring"),
        ("numpy.f2py", "compile"),
        ("numpy", "load"),
        ("torch.hub", "load"),
        ("torch.hub", "_load_local"),
        ("torch.jit", "load"),
        ("torch", "load"),
        ("torch.serialization", "load"),
        ("torch.utils.cpp_extension", "load_inline"),
        ("multiprocessing.util", "spawnv_passfds"),
        ("asyncio.subprocess", "create_subprocess_shell"),
        ("joblib", "load"),
        ("pandas", "read_pickle"),
    ],
)
def test_denylisted_callables_are_dangerous(module: str, name: str) -> None:
    for protocol in (0, 2, 4):
        analysis = analyze(
            pk.call(module, name, "x", protocol=protocol) if protocol else pk.protocol0_global(module, name)
        )
        assert f"{module}.{name}" in names(analysis, Verdict.DANGEROUS), analysis.calls


def test_unknown_global_is_unknown_and_print_is_not_safe() -> None:
    analysis = analyze(pk.call("builtins", "print", "hello"))
    assert names(analysis, Verdict.UNKNOWN) == {"builtins.print"}
    analysis = analyze(pk.call("mypackage.models", "Net"))
    assert names(analysis, Verdict.UNKNOWN) == {"mypackage.models.Net"}
    assert analysis.calls[0].chain == "mypackage.models.Net()"


# ------------------------------------------------------------------------------------------------ indirection
def test_builtins_only_getattr_chain_is_resolved_and_rendered() -> None:
    analysis = analyze(pk.getattr_import("os", "getcwd"))
    dangerous = names(analysis, Verdict.DANGEROUS)
    assert {"builtins.getattr", "builtins.__import__", "os.getcwd"} <= dangerous
    chain = next(
        c.chain for c in analysis.calls if (c.module, c.qualname) == ("os", "getcwd") and c.offset >= 0
    )
    assert chain == "getattr(__import__('os'), 'getcwd')()"


def test_getattr_on_an_allowlisted_class_reaching_a_safe_name_is_safe() -> None:
    # protocol 2 spelling of zoneinfo.ZoneInfo._unpickle, as pandas pickles time zones
    data = pk.proto(2) + pk.global_("builtins", "getattr") + pk.global_("zoneinfo", "ZoneInfo")
    data += pk.text("_unpickle") + pk.TUPLE2 + pk.REDUCE + pk.MARK + pk.text("UTC") + b"K\x01" + pk.TUPLE
    data += pk.REDUCE + pk.STOP
    assert_clean(data)


def test_getattr_reaching_a_dangerous_attribute_of_a_safe_class_is_dangerous() -> None:
    data = pk.proto(2) + pk.global_("builtins", "getattr") + pk.global_("collections", "OrderedDict")
    data += pk.text("__init__") + pk.TUPLE2 + pk.REDUCE + pk.EMPTY_TUPLE + pk.REDUCE + pk.STOP
    assert "builtins.getattr" in names(analyze(data), Verdict.DANGEROUS)


def test_getattr_passed_around_instead_of_called_is_dangerous() -> None:
    data = pk.proto(2) + pk.global_("collections", "defaultdict") + pk.global_("builtins", "getattr")
    data += pk.TUPLE1 + pk.REDUCE + pk.STOP
    assert "builtins.getattr" in names(analyze(data), Verdict.DANGEROUS)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (pk.call("importlib", "import_module", "os"), "importlib.import_module"),
        (pk.call("pkgutil", "resolve_name", "os:getcwd"), "pkgutil.resolve_name"),
        (pk.call("pydoc", "locate", "os.getcwd"), "pydoc.locate"),
        (pk.operator_gadget(), "operator.attrgetter"),
        (pk.marshal_function(), "marshal.loads"),
        (pk.marshal_function(), "types.FunctionType"),
        (pk.partial_gadget("os", "getcwd"), "os.getcwd"),
    ],
)
def test_indirection_gadgets_are_dangerous(payload: bytes, expected: str) -> None:
    assert expected in names(analyze(payload), Verdict.DANGEROUS)


def test_call_of_a_call_result_takes_the_worst_verdict_of_its_parts() -> None:
    analysis = analyze(pk.operator_gadget())
    dynamic = [c for c in analysis.calls if c.module in ("<dynamic>", "os")]
    assert dynamic
    assert all(c.verdict is Verdict.DANGEROUS for c in dynamic)
    assert any("attrgetter('getcwd')(__import__('os'))()" in c.chain for c in analysis.calls)


def test_partial_over_dangerous_callable_reports_the_wrapped_callable() -> None:
    analysis = analyze(pk.partial_gadget("os", "getcwd"))
    assert any(c.chain == "functools.partial(os.getcwd)()" for c in analysis.dangerous)


# ------------------------------------------------------------------------------------------------ parser evasion
@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("builtins", "getattr"),
        ("os.path", "os.getcwd"),
        ("collections", "os.getcwd"),
        ("sklearn.base", "sys.modules"),
        ("numpy", "testing._private.utils.runstring"),
        ("torch", "hub.load"),
        ("collections", "OrderedDict.__init__.__globals__"),
        ("builtins", "__builtins__"),
    ],
)
def test_dotted_names_resolve_segment_by_segment(module: str, name: str) -> None:
    analysis = analyze(pk.dotted(module, name))
    assert f"{module}.{name}" in names(analysis, Verdict.DANGEROUS)


def test_nested_qualname_of_an_allowlisted_class_is_not_prefix_matched() -> None:
    analysis = analyze(pk.dotted("collections", "OrderedDict.fromkeys"))
    assert names(analysis, Verdict.UNKNOWN) == {"collections.OrderedDict.fromkeys"}


def test_memo_aliasing_resolves_names_fetched_from_the_memo() -> None:
    assert "os.getcwd" in names(analyze(pk.memo_aliased("os", "getcwd")), Verdict.DANGEROUS)


def test_text_memo_opcodes_put_and_get() -> None:
    data = pk.proto(2) + pk.text("os") + pk.put(5) + pk.POP + pk.text("getcwd") + pk.put(6) + pk.POP
    data += pk.get(5) + pk.get(6) + b"\x93" + pk.EMPTY_TUPLE + pk.REDUCE + pk.STOP
    assert "os.getcwd" in names(analyze(data), Verdict.DANGEROUS)


def test_build_setattr_of_setstate_is_dangerous() -> None:
    analysis = analyze(pk.build_setstate("os", "getcwd"))
    assert "os.getcwd" in names(analysis, Verdict.DANGEROUS)
    assert "collections.OrderedDict.__setstate__" in names(analysis, Verdict.DANGEROUS)


def test_build_on_an_object_of_unknown_class_is_a_call() -> None:
    # copyreg._reconstructor is allowlisted, the class it instantiates is not: BUILD runs that class's code
    data = pk.proto(4) + pk.stack_global("copyreg", "_reconstructor") + pk.stack_global("evil", "Gadget")
    data += pk.stack_global("builtins", "object") + pk.NONE + b"\x87" + pk.REDUCE + pk.EMPTY_DICT
    data += pk.text("cmd") + pk.text("x") + pk.SETITEM + pk.BUILD + pk.STOP
    analysis = analyze(data)
    gadget = [c for c in analysis.calls if c.qualname == "Gadget"]
    assert [c.verdict for c in gadget] == [Verdict.UNKNOWN]
    assert gadget[0].chain == "copyreg._reconstructor(evil.Gadget, object, None).__setstate__({'cmd': 'x'})"


def test_build_on_a_class_object_is_flagged() -> None:
    data = pk.proto(4) + pk.stack_global("collections", "OrderedDict") + pk.EMPTY_DICT + pk.text("x")
    data += pk.text("y") + pk.SETITEM + pk.BUILD + pk.STOP
    assert "collections.OrderedDict" in names(analyze(data), Verdict.UNKNOWN)


def test_obj_then_pop_still_reports_the_call() -> None:
    analysis = analyze(pk.obj_then_pop("os", "getcwd"))
    assert "os.getcwd" in names(analysis, Verdict.DANGEROUS)
    assert analysis.errors == ()


def test_inst_and_newobj_ex_are_calls() -> None:
    assert "os.getcwd" in names(analyze(pk.inst_call("os", "getcwd")), Verdict.DANGEROUS)
    assert "os.getcwd" in names(analyze(pk.newobj_ex("os", "getcwd")), Verdict.DANGEROUS)


def test_frame_length_lie_is_an_error_but_the_payload_is_reported() -> None:
    analysis = analyze(pk.frame_lie("os", "getcwd"))
    assert "os.getcwd" in names(analysis, Verdict.DANGEROUS)
    assert any("FRAME" in e for e in analysis.errors)


def test_frame_shorter_than_its_opcodes_is_an_error_and_parsing_goes_on() -> None:
    body = pk.stack_global("os", "getcwd") + pk.EMPTY_TUPLE + pk.REDUCE + pk.STOP
    analysis = analyze(pk.proto(4) + pk.frame(3) + body)
    assert "os.getcwd" in names(analysis, Verdict.DANGEROUS)
    assert any("across the end of its FRAME" in e for e in analysis.errors)
    assert analyze(pickle.dumps(list(range(100_000)), protocol=4)).errors == ()


def test_extension_codes_are_unknown() -> None:
    analysis = analyze(pk.ext_code(7))
    assert names(analysis, Verdict.UNKNOWN) == {"<extension>.7"}


def test_protocol0_python2_names_are_mapped() -> None:
    data = pk.global_("__builtin__", "eval") + b"(S'1'\ntR."
    assert "builtins.eval" in names(analyze(data), Verdict.DANGEROUS)


def test_stack_global_with_computed_name_is_dangerous() -> None:
    data = pk.proto(4) + pk.stack_global("builtins", "str") + pk.text("os") + pk.TUPLE1 + pk.REDUCE
    data += pk.text("getcwd") + b"\x93" + pk.EMPTY_TUPLE + pk.REDUCE + pk.STOP
    assert "<dynamic>.STACK_GLOBAL" in names(analyze(data), Verdict.DANGEROUS)


# ------------------------------------------------------------------------------------------------ broken streams
def test_payload_followed_by_garbage_reports_both() -> None:
    analysis = analyze(pk.call("os", "getcwd") + b"\xffgarbage")
    assert "os.getcwd" in names(analysis, Verdict.DANGEROUS)
    assert analysis.n_pickles == 1
    assert any("garbage after STOP" in e for e in analysis.errors)
    assert analysis.end_offset == len(pk.call("os", "getcwd"))


def test_truncated_stream_reports_calls_before_the_cut() -> None:
    full = pk.call("os", "getcwd")
    analysis = analyze(full[:-1])
    assert "os.getcwd" in names(analysis, Verdict.DANGEROUS)
    assert analysis.n_pickles == 0
    assert analysis.errors


def test_several_pickles_in_one_stream_are_all_analysed() -> None:
    stream = pickle.dumps(1, protocol=2) + pickle.dumps([2], protocol=4) + pk.call("os", "getcwd")
    analysis = analyze(stream)
    assert analysis.n_pickles == 3
    assert "os.getcwd" in names(analysis, Verdict.DANGEROUS)
    assert analyze(stream, max_pickles=2).dangerous == ()


def test_empty_and_unknown_opcode_streams_are_errors() -> None:
    assert analyze(b"").errors == ("empty pickle stream",)
    assert analyze(b"\xff").errors[0].startswith("offset 0: unknown opcode")


def test_limits_stop_the_analysis() -> None:
    data = pickle.dumps(list(range(1000)), protocol=2)
    assert analyze(data, max_opcodes=50).limit == "max_opcodes"
    memo_heavy = pickle.dumps([str(i) for i in range(100)], protocol=4)
    assert analyze(memo_heavy, max_memo_entries=10).limit == "max_memo_entries"
    assert analyze(data, deadline=time.monotonic() - 1).limit == "timeout_s"
    assert analyze(data).limit is None


def test_large_byte_payloads_are_skipped_not_parsed() -> None:
    blob = bytes(range(256)) * 40_000
    data = pickle.dumps({"w": blob, "t": "x" * 100_000}, protocol=4)
    analysis = analyze(data)
    assert analysis.errors == ()
    assert analysis.n_opcodes < 30


def test_memoryview_input_is_accepted() -> None:
    analysis = analyze_pickle(memoryview(pk.call("os", "getcwd")), allowlist=ALLOW)
    assert "os.getcwd" in names(analysis, Verdict.DANGEROUS)


def test_numbers_fast_path_counts_every_opcode_like_pickletools() -> None:
    values = [0.5 * i for i in range(5000)] + list(range(300)) + [None, True, False] * 10 + [70000, -5]
    data = pickle.dumps(values, protocol=4)
    analysis = analyze(data)
    assert analysis.n_opcodes == sum(1 for _ in pickletools.genops(io.BytesIO(data)))
    assert analysis.errors == ()


def test_numbers_fast_path_keeps_stack_semantics() -> None:
    # 20 floats, then TUPLE over the mark: the tuple is the callable's argument
    floats = b"".join(b"G" + struct.pack(">d", float(i)) for i in range(20))
    data = pk.proto(4) + pk.stack_global("os", "getcwd") + pk.MARK + floats + pk.TUPLE + pk.REDUCE + pk.STOP
    analysis = analyze(data)
    assert "os.getcwd" in names(analysis, Verdict.DANGEROUS)
    assert analysis.errors == ()


# ------------------------------------------------------------------------------------------------ torch nesting
def test_torch_storage_bytes_are_analysed_as_nested_pickles() -> None:
    torch = pytest.importorskip("torch")
    assert_clean(pickle.dumps(torch.arange(4.0), protocol=4))
    # a legacy torch stream whose main pickle calls os.getcwd, smuggled through _load_from_bytes
    inner = (
        pickle.dumps(1, protocol=2) * 3 + pk.call("os", "getcwd", protocol=2) + pickle.dumps([], protocol=2)
    )
    data = pk.proto(4) + pk.stack_global("torch.storage", "_load_from_bytes") + pk.binbytes(inner) + pk.TUPLE1
    data += pk.REDUCE + pk.STOP
    assert "os.getcwd" in names(analyze(data), Verdict.DANGEROUS)


def test_torch_load_from_bytes_of_a_non_literal_is_dangerous() -> None:
    data = (
        pk.proto(4) + pk.stack_global("torch.storage", "_load_from_bytes") + pk.stack_global("evil", "blob")
    )
    data += pk.EMPTY_TUPLE + pk.REDUCE + pk.TUPLE1 + pk.REDUCE + pk.STOP
    assert "torch.storage._load_from_bytes" in names(analyze(data), Verdict.DANGEROUS)


# ------------------------------------------------------------------------------------------------ benign, real
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_arrays_of_every_kind_are_clean(protocol: int) -> None:
    objects = [
        np.arange(6.0).reshape(2, 3),
        np.asfortranarray(np.arange(6).reshape(2, 3)),
        np.array([1, "x", None], dtype=object),
        np.zeros(2, dtype=[("a", "i4"), ("b", "f8", (2,))]),
        np.array(["2020-01-01"], dtype="M8[D]"),
        np.array([1], dtype="m8[s]"),
        np.array([1 + 2j]),
        np.array(["ab", "c"]),
        np.float64(1.5),
        np.int32(3),
        np.dtype("f4"),
        np.ma.masked_array([1, 2], [0, 1]),
        np.random.RandomState(0),
        np.random.default_rng(0),
    ]
    assert_clean(pickle.dumps(objects, protocol=protocol))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_python_and_pandas_objects_are_clean(protocol: int) -> None:
    import datetime
    import decimal

    import pandas as pd

    frame = pd.DataFrame(
        {
            "a": [1, 2],
            "b": [1.5, None],
            "c": ["x", "y"],
            "d": pd.to_datetime(["2020-01-01", "2020-01-02"]),
            "e": pd.Categorical(["u", "v"]),
            "f": pd.date_range("2020", periods=2, tz="Europe/Paris"),
            "g": pd.array([1, None], dtype="Int64"),
        }
    )
    objects = [
        frame,
        frame["a"],
        pd.MultiIndex.from_tuples([(1, "a"), (2, "b")]),
        OrderedDict(a=1),
        {1, 2},
        frozenset([3]),
        datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
        decimal.Decimal("1.5"),
        complex(1, 2),
        bytearray(b"x"),
        slice(1, 2),
    ]
    assert_clean(pickle.dumps(objects, protocol=protocol))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_scikit_learn_estimators_are_clean(protocol: int) -> None:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    x, y = make_classification(n_samples=40, n_features=5, random_state=0)
    models = [
        make_pipeline(StandardScaler(), LogisticRegression()),
        RandomForestClassifier(n_estimators=3, random_state=0),
        HistGradientBoostingClassifier(max_iter=3),
        KNeighborsClassifier(3),
        SVC(probability=True, random_state=0),
        DecisionTreeClassifier(),
        MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = [m.fit(x, y) for m in models]
    assert_clean(pickle.dumps(fitted, protocol=protocol))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_torch_modules_optimizers_and_state_dicts_are_clean(protocol: int) -> None:
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3),
        torch.nn.BatchNorm2d(2),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.LazyLinear(2),
    )
    net(torch.randn(1, 1, 5, 5)).sum().backward()
    optimizer = torch.optim.Adam(net.parameters())
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
    encoder = torch.nn.TransformerEncoderLayer(4, 2, 8)
    objects = [
        net,
        net.state_dict(),
        optimizer,
        optimizer.state_dict(),
        scheduler,
        scheduler.state_dict(),
        encoder,
    ]
    assert_clean(pickle.dumps(objects, protocol=protocol))


def test_joblib_streams_skip_raw_array_bytes(tmp_path: Any) -> None:
    import joblib

    payload = {
        "w": np.arange(10_000.0),
        "o": np.array([1, "x"], dtype=object),
        "f": np.asfortranarray(np.eye(3)),
    }
    joblib.dump(payload, tmp_path / "m.joblib")
    data = (tmp_path / "m.joblib").read_bytes()
    analysis = analyze(data, joblib=True)
    assert analysis.errors == ()
    assert [c for c in analysis.calls if c.verdict is not Verdict.SAFE] == []
    assert analysis.end_offset == len(data)
    assert analyze(data).errors  # read as a plain pickle, the array bytes are garbage


def test_joblib_object_array_payload_is_analysed(tmp_path: Any) -> None:
    import joblib

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            import os

            return (os.getcwd, ())

    joblib.dump({"o": np.array([Payload()], dtype=object)}, tmp_path / "evil.joblib")
    analysis = analyze((tmp_path / "evil.joblib").read_bytes(), joblib=True)
    assert {"posix.getcwd", "nt.getcwd"} & names(analysis, Verdict.DANGEROUS)


# ------------------------------------------------------------------------------------------------ never raises
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_random_bytes_never_raise(data: bytes) -> None:
    analysis = analyze(data)
    assert isinstance(analysis, PickleAnalysis)
    assert 0 <= analysis.end_offset <= len(data)


def _real_pickles() -> list[bytes]:
    from collections import Counter

    objects: list[Any] = [
        {"a": [1, 2.5, "x", None, True], "b": (1, 2), "c": {1, 2}},
        OrderedDict(x=np.arange(3)),
        Counter("abc"),
        [np.float32(1), np.zeros((2, 2))],
    ]
    return [pickle.dumps(o, protocol=p) for o in objects for p in (0, 2, 4, 5)] + [
        pk.getattr_import("os", "getcwd"),
        pk.build_setstate("os", "getcwd"),
        pk.marshal_function(),
    ]


REAL = _real_pickles()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(REAL))),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    st.integers(0, 10_000),
)
def test_mutated_real_pickles_never_raise(index: int, edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(REAL[index])
    for where, value in edits:
        data[where % len(data)] = value
    analysis = analyze_pickle(bytes(data[: max(1, cut % (len(data) + 1))]), allowlist=ALLOW, joblib=True)
    assert isinstance(analysis, PickleAnalysis)


def test_custom_allowlist_makes_a_user_class_safe() -> None:
    extended = ALLOW.extended(["mypackage.models.Net"])
    analysis = analyze_pickle(pk.call("mypackage.models", "Net"), allowlist=extended)
    assert analysis.unknown == ()
    empty = Allowlist(frozenset())
    assert analyze_pickle(pk.benign_list(), allowlist=empty).calls == ()
