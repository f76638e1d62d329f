"""Malicious corpus: one file (or model directory) per technique that public reports describe.

Payloads are harmless on purpose (``print``, ``os.getcwd``, a marker-file write under /tmp) and nothing here ever
loads what it writes. Most streams are assembled opcode by opcode (:mod:`.opcodes`) so that each one is exactly
the evasion it is named after; container samples are made by the real libraries (torch, joblib, numpy) where
those write the container, with a payload object inside.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import marshal
import struct
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from . import opcodes as op
from .containers import ZipMember, gguf_file, pb_bytes, pb_varint, safetensors_file, sevenzip_file, zip_file
from .manifest import Sample, Spec

__all__ = ["MARKER_PATH", "PRINT", "SPECS", "write_malicious"]

PRINT = "print('garrison corpus sample')"
MARKER_PATH = "/tmp/garrison-corpus-marker"
MARKER = f"open({MARKER_PATH!r}, 'w').write('ran')"

EXEC = "GAR-SC-001"
CALL = "GAR-SC-001|GAR-SC-002"  # dangerous or outside the allowlist: either stops the load
MALFORMED = "GAR-SC-003"
ARCHIVE = "GAR-SC-004"
KERAS = "GAR-SC-005"
TF_OPS = "GAR-SC-006"
ONNX = "GAR-SC-007"
SAFETENSORS = "GAR-SC-008"
TEMPLATE = "GAR-SC-009"
REMOTE_CODE = "GAR-SC-010"


class _Payload:
    """Pickles as ``exec(PRINT)``: how a real library (torch, joblib, numpy) writes a payload into its container."""

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return exec, (PRINT,)


def _exec_pickle(protocol: int = 2, code: str = PRINT) -> bytes:
    return op.wrap(op.call(op.global_op("builtins", "exec"), op.unicode(code)), protocol)


def _bytes_writer(data: Callable[[], bytes]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data())

    return write


_SPECS: list[Spec] = []


def _add(
    name: str,
    family: str,
    technique: str,
    rules: tuple[str, ...],
    write: Callable[[Path], None],
    *,
    expected: str = "malicious",
    made_by: str = "hand",
    pickle_based: bool = True,
) -> None:
    sample = Sample(name, expected, family, technique, rules, made_by, pickle_based)  # type: ignore[arg-type]
    _SPECS.append(Spec(sample, write))


def _pickle(
    name: str, family: str, technique: str, rules: tuple[str, ...], data: Callable[[], bytes]
) -> None:
    _add(name, family, technique, rules, _bytes_writer(data))


# --- classic payloads (every scanner should catch these) ----------------------------------------------------

_pickle(
    "classic/exec_proto2.pkl", "classic", "builtins.exec via GLOBAL+REDUCE, protocol 2", (EXEC,), _exec_pickle
)
_pickle(
    "classic/eval_proto0.pkl",
    "classic",
    "__builtin__.eval (Python 2 name) in a protocol 0 text pickle",
    (EXEC,),
    lambda: (
        op.global_op("__builtin__", "eval")
        + op.MARK
        + op.text_unicode("print(1)")
        + op.TUPLE
        + op.REDUCE
        + op.STOP
    ),
)
_pickle(
    "classic/os_getcwd_proto4.pkl",
    "classic",
    "os.getcwd via STACK_GLOBAL, protocol 4",
    (EXEC,),
    lambda: op.wrap(op.stack_global("os", "getcwd") + op.EMPTY_TUPLE + op.REDUCE, 4),
)
_pickle(
    "classic/posix_getcwd.pkl",
    "classic",
    "posix.getcwd (os under its platform name)",
    (EXEC,),
    lambda: op.wrap(op.global_op("posix", "getcwd") + op.EMPTY_TUPLE + op.REDUCE, 2),
)
_pickle(
    "classic/marker_write_proto5.pkl",
    "classic",
    "exec of a marker-file write, protocol 5 with an honest FRAME",
    (EXEC,),
    lambda: (lambda body: op.proto(5) + op.frame(len(body) + 1) + body + op.STOP)(
        op.call(op.stack_global("builtins", "exec"), op.unicode(MARKER))
    ),
)

# --- denylist gaps: callables that run code but are missing from name denylists -----------------------------


def _call_pickle(module: str, name: str, *args: bytes, protocol: int = 2) -> Callable[[], bytes]:
    return lambda: op.wrap(op.call(op.global_op(module, name), *args), protocol)


_pickle(
    "denylist/runpy_run_code.pkl",
    "denylist-gap",
    "runpy._run_code(src, {})",
    (EXEC,),
    _call_pickle("runpy", "_run_code", op.unicode(PRINT), op.EMPTY_DICT),
)
_pickle(
    "denylist/cprofile_run.pkl",
    "denylist-gap",
    "cProfile.run(src)",
    (EXEC,),
    _call_pickle("cProfile", "run", op.unicode(PRINT)),
)
_pickle(
    "denylist/profile_run.pkl",
    "denylist-gap",
    "profile.run(src)",
    (CALL,),
    _call_pickle("profile", "run", op.unicode(PRINT)),
)
_pickle(
    "denylist/pdb_run.pkl",
    "denylist-gap",
    "pdb.run(src)",
    (CALL,),
    _call_pickle("pdb", "run", op.unicode(PRINT)),
)
_pickle(
    "denylist/timeit_timeit.pkl",
    "denylist-gap",
    "timeit.timeit(src, setup, timer, number)",
    (EXEC,),
    _call_pickle(
        "timeit",
        "timeit",
        op.unicode(PRINT),
        op.unicode(""),
        op.global_op("time", "perf_counter"),
        op.binint(1),
    ),
)
_pickle(
    "denylist/code_interactive_interpreter.pkl",
    "denylist-gap",
    "code.InteractiveInterpreter.runsource(InteractiveInterpreter(), src) via a dotted STACK_GLOBAL",
    (EXEC,),
    lambda: op.wrap(
        op.call(
            op.stack_global("code", "InteractiveInterpreter.runsource"),
            op.stack_global("code", "InteractiveInterpreter") + op.EMPTY_TUPLE + op.REDUCE,
            op.unicode(PRINT),
        ),
        4,
    ),
)
_pickle(
    "denylist/pip_main.pkl",
    "denylist-gap",
    "pip._internal.cli.main.main(['--version'])",
    (EXEC,),
    _call_pickle("pip._internal.cli.main", "main", b"]" + op.unicode("--version") + b"a"),
)
_pickle(
    "denylist/numpy_runstring.pkl",
    "denylist-gap",
    "numpy.testing._private.utils.runstring(src, {})",
    (CALL,),
    _call_pickle("numpy.testing._private.utils", "runstring", op.unicode(PRINT), op.EMPTY_DICT),
)
_pickle(
    "denylist/torch_hub_load.pkl",
    "denylist-gap",
    "torch.hub.load(repo, entry) runs hubconf.py",
    (CALL,),
    _call_pickle("torch.hub", "load", op.unicode("garrison/corpus"), op.unicode("model")),
)
_pickle(
    "denylist/torch_load_inline.pkl",
    "denylist-gap",
    "torch.utils.cpp_extension.load_inline compiles and loads C++",
    (CALL,),
    _call_pickle("torch.utils.cpp_extension", "load_inline", op.unicode("corpus"), op.unicode("int corpus;")),
)
_pickle(
    "denylist/torch_fx_forward_from_src.pkl",
    "denylist-gap",
    "torch.fx.graph_module._forward_from_src(src, globals, None) execs source",
    (CALL,),
    _call_pickle(
        "torch.fx.graph_module",
        "_forward_from_src",
        op.unicode(f"def forward(self):\n    {PRINT}\n"),
        op.EMPTY_DICT,
        op.NONE,
    ),
)

# --- indirection: reach a dangerous callable through an innocent-looking one ---------------------------------

_pickle(
    "indirection/importlib_import_module.pkl",
    "indirection",
    "operator.methodcaller('getcwd')(importlib.import_module('os'))",
    (EXEC,),
    lambda: op.wrap(
        op.call(
            op.call(op.global_op("operator", "methodcaller"), op.unicode("getcwd")),
            op.call(op.global_op("importlib", "import_module"), op.unicode("os")),
        )
    ),
)
_pickle(
    "indirection/pkgutil_resolve_name.pkl",
    "indirection",
    "pkgutil.resolve_name('os:getcwd')()",
    (EXEC,),
    lambda: op.wrap(
        op.call(op.global_op("pkgutil", "resolve_name"), op.unicode("os:getcwd")) + op.EMPTY_TUPLE + op.REDUCE
    ),
)
_pickle(
    "indirection/pydoc_locate.pkl",
    "indirection",
    "pydoc.locate('os.getcwd')()",
    (EXEC,),
    lambda: op.wrap(
        op.call(op.global_op("pydoc", "locate"), op.unicode("os.getcwd")) + op.EMPTY_TUPLE + op.REDUCE
    ),
)
_pickle(
    "indirection/operator_attrgetter.pkl",
    "indirection",
    "operator.attrgetter('__class__.__base__.__subclasses__')(0)()",
    (EXEC,),
    lambda: op.wrap(
        op.call(
            op.call(op.global_op("operator", "attrgetter"), op.unicode("__class__.__base__.__subclasses__")),
            op.binint(0),
        )
        + op.EMPTY_TUPLE
        + op.REDUCE
    ),
)
_pickle(
    "indirection/_operator_methodcaller.pkl",
    "indirection",
    "_operator.methodcaller('__reduce_ex__', 2)(0) via the C module",
    (EXEC,),
    lambda: op.wrap(
        op.call(
            op.call(op.global_op("_operator", "methodcaller"), op.unicode("__reduce_ex__"), op.binint(2)),
            op.binint(0),
        )
    ),
)
_pickle(
    "indirection/marshal_function_type.pkl",
    "indirection",
    "types.FunctionType(marshal.loads(code), {})()",
    (EXEC,),
    lambda: op.wrap(
        op.call(
            op.global_op("types", "FunctionType"),
            op.call(
                op.global_op("marshal", "loads"),
                b"B"
                + struct.pack("<I", len(code := marshal.dumps(compile(PRINT, "<corpus>", "exec"))))
                + code,
            ),
            op.EMPTY_DICT,
        )
        + op.EMPTY_TUPLE
        + op.REDUCE,
        3,
    ),
)
_pickle(
    "indirection/builtins_getattr_import.pkl",
    "indirection",
    "getattr(__import__('os'), 'getcwd')() with builtins only",
    (EXEC,),
    lambda: op.wrap(
        op.call(
            op.global_op("builtins", "getattr"),
            op.call(op.global_op("builtins", "__import__"), op.unicode("os")),
            op.unicode("getcwd"),
        )
        + op.EMPTY_TUPLE
        + op.REDUCE
    ),
)
_pickle(
    "indirection/builtins_getattr_subclasses.pkl",
    "indirection",
    "getattr(object, '__subclasses__')() with builtins only",
    (EXEC,),
    lambda: op.wrap(
        op.call(
            op.global_op("builtins", "getattr"),
            op.global_op("builtins", "object"),
            op.unicode("__subclasses__"),
        )
        + op.EMPTY_TUPLE
        + op.REDUCE
    ),
)

# --- parser evasion: streams that parsers read differently -----------------------------------------------------

_pickle(
    "evasion/dotted_stack_global_torch.pkl",
    "parser-evasion",
    "STACK_GLOBAL('torch', 'serialization.os.getcwd'): an allowlisted module, os reached through attributes",
    (CALL,),
    lambda: op.wrap(op.stack_global("torch", "serialization.os.getcwd") + op.EMPTY_TUPLE + op.REDUCE, 4),
)
_pickle(
    "evasion/dotted_stack_global_builtins.pkl",
    "parser-evasion",
    "STACK_GLOBAL('collections', 'OrderedDict.__init__.__globals__'): dunder walk from an allowlisted class",
    (CALL,),
    lambda: op.wrap(op.stack_global("collections", "OrderedDict.__init__.__globals__"), 4),
)
_pickle(
    "evasion/dotted_global_proto4.pkl",
    "parser-evasion",
    "GLOBAL (text opcode) with a dotted name under PROTO 4: 'numpy' 'os.getcwd'",
    (CALL,),
    lambda: op.wrap(op.global_op("numpy", "os.getcwd") + op.EMPTY_TUPLE + op.REDUCE, 4),
)
_pickle(
    "evasion/memo_alias_overwrite.pkl",
    "parser-evasion",
    "memo slot 0 holds a safe class, then is overwritten with builtins.exec and fetched for REDUCE",
    (EXEC,),
    lambda: op.wrap(
        op.global_op("collections", "OrderedDict")
        + op.binput(0)
        + op.POP
        + op.global_op("builtins", "exec")
        + op.binput(0)
        + op.POP
        + op.call(op.binget(0), op.unicode(PRINT))
    ),
)
_pickle(
    "evasion/memo_strings_stack_global.pkl",
    "parser-evasion",
    "STACK_GLOBAL whose module and name strings come from the memo (MEMOIZE/BINGET)",
    (EXEC,),
    lambda: op.wrap(
        op.unicode("os")
        + op.MEMOIZE
        + op.POP
        + op.unicode("getcwd")
        + op.MEMOIZE
        + op.POP
        + op.binget(0)
        + op.binget(1)
        + op.STACK_GLOBAL
        + op.EMPTY_TUPLE
        + op.REDUCE,
        4,
    ),
)
_pickle(
    "evasion/build_setattr_setstate.pkl",
    "parser-evasion",
    "BUILD slot state sets __setstate__=exec on a namespace, a second BUILD then calls it",
    (EXEC,),
    lambda: op.wrap(
        op.global_op("types", "SimpleNamespace")
        + op.EMPTY_TUPLE
        + op.REDUCE
        + op.NONE
        + op.EMPTY_DICT
        + op.unicode("__setstate__")
        + op.global_op("builtins", "exec")
        + op.SETITEM
        + op.TUPLE2
        + op.BUILD
        + op.unicode(PRINT)
        + op.BUILD
    ),
)
_pickle(
    "evasion/frame_length_short.pkl",
    "parser-evasion",
    "FRAME announces 4 bytes, the payload runs past it",
    (EXEC, MALFORMED),
    lambda: (
        op.proto(4) + op.frame(4) + op.call(op.stack_global("builtins", "exec"), op.unicode(PRINT)) + op.STOP
    ),
)
_pickle(
    "evasion/frame_length_long.pkl",
    "parser-evasion",
    "FRAME announces 1 MB, the file ends long before",
    (EXEC, MALFORMED),
    lambda: (
        op.proto(4)
        + op.frame(1 << 20)
        + op.call(op.stack_global("builtins", "exec"), op.unicode(PRINT))
        + op.STOP
    ),
)
_pickle(
    "evasion/obj_then_pop.pkl",
    "parser-evasion",
    "OBJ calls exec, POP discards the result, an empty dict is the visible value",
    (EXEC,),
    lambda: op.wrap(
        op.MARK + op.global_op("builtins", "exec") + op.unicode(PRINT) + op.OBJ + op.POP + op.EMPTY_DICT
    ),
)
_pickle(
    "evasion/inst_proto0.pkl",
    "parser-evasion",
    "INST builtins.exec in a protocol 0 text pickle",
    (EXEC,),
    lambda: op.MARK + op.text_unicode(PRINT) + op.inst("builtins", "exec") + op.STOP,
)
_pickle(
    "evasion/global_proto0_string.pkl",
    "parser-evasion",
    "protocol 0 GLOBAL os.getcwd with a quoted STRING argument list",
    (EXEC,),
    lambda: (
        op.global_op("os", "getcwd")
        + op.MARK
        + op.TUPLE
        + op.REDUCE
        + op.POP
        + op.text_string("ok")
        + op.STOP
    ),
)
_pickle(
    "evasion/second_pickle_payload.pkl",
    "parser-evasion",
    "a clean pickle, then a second pickle in the same stream carrying the payload",
    (EXEC,),
    lambda: op.wrap(op.EMPTY_DICT) + _exec_pickle(),
)
_pickle(
    "evasion/newobj_payload_class.pkl",
    "parser-evasion",
    "NEWOBJ on subprocess.Popen (cls.__new__ then BUILD) instead of REDUCE",
    (EXEC,),
    lambda: op.wrap(
        op.global_op("subprocess", "Popen") + op.EMPTY_TUPLE + op.NEWOBJ + op.EMPTY_DICT + op.BUILD
    ),
)

# --- broken streams: a payload is still a payload when the stream does not parse -------------------------------

_pickle(
    "broken/payload_then_garbage.pkl",
    "broken-stream",
    "payload, STOP, then bytes that are no pickle",
    (EXEC, MALFORMED),
    lambda: _exec_pickle() + b"\xde\xad\xbe\xef not a pickle \x00\xff" * 4,
)
_pickle(
    "broken/payload_truncated.pkl",
    "broken-stream",
    "payload REDUCE and no STOP: the file just ends",
    (EXEC, MALFORMED),
    lambda: _exec_pickle()[:-1],
)
_pickle(
    "broken/payload_then_bad_opcode.pkl",
    "broken-stream",
    "payload REDUCE, then an undefined opcode",
    (EXEC, MALFORMED),
    lambda: _exec_pickle()[:-1] + b"\xfe" + op.STOP,
)
_pickle(
    "broken/payload_then_missing_memo.pkl",
    "broken-stream",
    "payload REDUCE, then BINGET of an empty memo slot",
    (EXEC, MALFORMED),
    lambda: _exec_pickle()[:-1] + op.POP + op.binget(7) + op.STOP,
)

# --- wrappers: compression around a payload --------------------------------------------------------------------

_add(
    "wrapper/payload_pickle.7z",
    "wrapper",
    "payload pickle stored in a 7z archive (unsupported: incomplete)",
    (),
    _bytes_writer(lambda: sevenzip_file("data.pkl", _exec_pickle())),
    expected="incomplete",
)
_pickle(
    "wrapper/payload_gzip.bin",
    "wrapper",
    "gzip around a payload pickle, neutral extension",
    (EXEC,),
    lambda: gzip.compress(_exec_pickle(), mtime=0),
)
_pickle(
    "wrapper/payload.pkl.bz2",
    "wrapper",
    "bz2 around a payload pickle",
    (EXEC,),
    lambda: bz2.compress(_exec_pickle()),
)
_pickle(
    "wrapper/payload.pkl.xz",
    "wrapper",
    "xz around a payload pickle",
    (EXEC,),
    lambda: lzma.compress(_exec_pickle()),
)
_pickle(
    "wrapper/payload.pkl.lzma",
    "wrapper",
    "legacy .lzma (FORMAT_ALONE) around a payload pickle",
    (EXEC,),
    lambda: lzma.compress(_exec_pickle(), format=lzma.FORMAT_ALONE),
)
_pickle(
    "wrapper/payload_gzip_in_bz2.bin",
    "wrapper",
    "gzip inside bz2 around a payload pickle",
    (EXEC,),
    lambda: bz2.compress(gzip.compress(_exec_pickle(), mtime=0)),
)

# --- container tricks -------------------------------------------------------------------------------------------


def _zip(*members: ZipMember) -> Callable[[], bytes]:
    return lambda: zip_file(members)


_pickle(
    "container/zip_bad_crc.zip",
    "container",
    "zip member with a wrong CRC-32 holding a payload",
    (ARCHIVE, EXEC),
    _zip(ZipMember("model/data.pkl", _exec_pickle(), crc=0xDEADBEEF)),
)
_pickle(
    "container/zip_name_mismatch.zip",
    "container",
    "local header names model/data.pkl, central directory names model/readme.txt",
    (ARCHIVE, EXEC),
    _zip(ZipMember("model/data.pkl", _exec_pickle(), central_name="model/readme.txt")),
)
_pickle(
    "container/zip_flag_encrypted.zip",
    "container",
    "encryption flag bit set on a stored, unencrypted payload",
    (ARCHIVE,),
    _zip(ZipMember("model/data.pkl", _exec_pickle(), flags=0x1)),
)
_pickle(
    "container/zip_flag_reserved.zip",
    "container",
    "reserved flag bits 0xC000 (not encryption) on a payload member",
    (ARCHIVE, EXEC),
    _zip(ZipMember("model/data.pkl", _exec_pickle(), flags=0xC000)),
)
_pickle(
    "container/zip_duplicate_names.zip",
    "container",
    "two members named model/data.pkl: a clean one, then the payload",
    (ARCHIVE, EXEC),
    _zip(ZipMember("model/data.pkl", op.wrap(op.EMPTY_DICT)), ZipMember("model/data.pkl", _exec_pickle())),
)
_pickle(
    "container/zip_path_traversal.zip",
    "container",
    "member path ../../garrison-corpus.pkl escapes the directory",
    (ARCHIVE,),
    _zip(ZipMember("../../garrison-corpus.pkl", op.wrap(op.EMPTY_DICT))),
)
_pickle(
    "container/zip_nested.zip",
    "container",
    "payload pickle in a zip inside a zip (deflated)",
    (EXEC,),
    _zip(
        ZipMember(
            "weights/inner.zip", zip_file([ZipMember("data.pkl", _exec_pickle(), deflate=True)]), deflate=True
        )
    ),
)


def _tar(name: str, data: Callable[[], bytes]) -> Callable[[], bytes]:
    def build() -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
            content = data()
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(content), 0
            archive.addfile(info, io.BytesIO(content))
        return buffer.getvalue()

    return build


_pickle(
    "container/tar_payload.tar",
    "container",
    "payload pickle as a tar member",
    (EXEC,),
    _tar("model/data.pkl", _exec_pickle),
)
_pickle(
    "container/tar_path_traversal.tar",
    "container",
    "tar member path ../garrison-corpus.pkl",
    (ARCHIVE,),
    _tar("../garrison-corpus.pkl", lambda: op.wrap(op.EMPTY_DICT)),
)


def _torch_writer(legacy: bool) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        import torch

        path.parent.mkdir(parents=True, exist_ok=True)
        state = {"weight": torch.zeros(2, 2), "hook": _Payload()}
        torch.save(state, path, _use_new_zipfile_serialization=not legacy)

    return write


def _torch_extra_pickle(path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"weight": torch.zeros(2, 2)}, path)
    with zipfile.ZipFile(path, "a") as archive:
        root = archive.namelist()[0].split("/")[0]
        archive.writestr(f"{root}/extra.pkl", _exec_pickle())


def _torch_legacy_stacked() -> bytes:
    """torch's legacy framing written by hand: magic number, protocol, sys info, then the payload as the object."""
    magic = op.wrap(b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little"))
    version = op.wrap(op.binint(1001))
    sys_info = op.wrap(op.EMPTY_DICT + op.unicode("little_endian") + b"\x88" + op.SETITEM)
    return magic + version + sys_info + _exec_pickle() + op.wrap(b"]")


_add(
    "container/torch_zip_payload.pt",
    "container",
    "torch.save zip checkpoint, payload object in data.pkl",
    (EXEC,),
    _torch_writer(legacy=False),
    made_by="torch",
)
_add(
    "container/torch_zip_extra_pickle.pt",
    "container",
    "torch zip checkpoint with an extra .pkl member",
    (EXEC,),
    _torch_extra_pickle,
    made_by="torch",
)
_add(
    "container/torch_legacy_payload.pt",
    "container",
    "legacy (non-zip) torch.save checkpoint with a payload",
    (EXEC,),
    _torch_writer(legacy=True),
    made_by="torch",
)
_pickle(
    "container/torch_legacy_stacked.pt",
    "container",
    "hand-stacked legacy torch pickles, payload as the 4th",
    (EXEC,),
    _torch_legacy_stacked,
)


def _joblib_writer(compress: object, with_array: bool = False) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        import joblib
        import numpy as np

        path.parent.mkdir(parents=True, exist_ok=True)
        value: dict[str, object] = {"model": "corpus", "hook": _Payload()}
        if with_array:
            value["coef"] = np.arange(4096, dtype=np.float64)
        joblib.dump(value, path, compress=compress)

    return write


_add(
    "container/joblib_zlib_payload.joblib",
    "container",
    "joblib.dump(compress=3) (zlib) with a payload",
    (EXEC,),
    _joblib_writer(3),
    made_by="joblib",
)
_add(
    "container/joblib_gzip_payload.joblib",
    "container",
    "joblib.dump(compress='gzip') with a payload",
    (EXEC,),
    _joblib_writer(("gzip", 3)),
    made_by="joblib",
)
_add(
    "container/joblib_lzma_payload.joblib",
    "container",
    "joblib.dump(compress='lzma') with a payload",
    (EXEC,),
    _joblib_writer(("lzma", 3)),
    made_by="joblib",
)
_add(
    "container/joblib_array_then_payload.joblib",
    "container",
    "plain joblib.dump: raw numpy array bytes interleaved, payload after them",
    (EXEC,),
    _joblib_writer(0, with_array=True),
    made_by="joblib",
)


def _numpy_writer(npz: bool) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        import numpy as np

        path.parent.mkdir(parents=True, exist_ok=True)
        array = np.array([1, "corpus", _Payload()], dtype=object)
        if npz:
            np.savez(path, weights=np.zeros(3), extra=array)
        else:
            np.save(path, array, allow_pickle=True)

    return write


_add(
    "container/npy_object_payload.npy",
    "container",
    "np.save of an object array holding a payload",
    (EXEC,),
    _numpy_writer(npz=False),
    made_by="numpy",
)
_add(
    "container/npz_object_payload.npz",
    "container",
    "np.savez with an object-array member holding a payload",
    (EXEC,),
    _numpy_writer(npz=True),
    made_by="numpy",
)

# --- formats that are not pickle --------------------------------------------------------------------------------


def _keras_zip(layers: list[dict[str, object]]) -> bytes:
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "sequential", "trainable": True, "layers": layers},
        "registered_name": None,
        "build_config": {"input_shape": [None, 4]},
    }
    metadata = {"keras_version": "3.6.0", "date_saved": "2024-01-01@00:00:00"}
    return zip_file(
        [
            ZipMember("metadata.json", json.dumps(metadata).encode()),
            ZipMember("config.json", json.dumps(config).encode()),
        ]
    )


def keras_dense(name: str, activation: object = "relu") -> dict[str, object]:
    """A standard Dense layer as Keras 3 writes it in config.json."""
    return {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": {
            "name": name,
            "trainable": True,
            "dtype": "float32",
            "units": 2,
            "activation": activation,
            "use_bias": True,
        },
        "registered_name": None,
        "build_config": {"input_shape": [None, 4]},
    }


def keras_file(layers: list[dict[str, object]]) -> bytes:
    """A .keras zip (metadata.json + config.json) with ``layers`` in a Sequential model."""
    return _keras_zip(layers)


_LAMBDA_CODE = __import__("base64").b64encode(marshal.dumps(compile(PRINT, "<corpus>", "exec"))).decode()
_pickle(
    "nonpickle/keras_lambda.keras",
    "non-pickle",
    "Keras 3 .keras with a Lambda layer carrying marshalled bytecode",
    (KERAS,),
    lambda: keras_file(
        [
            keras_dense("dense"),
            {
                "module": "keras.layers",
                "class_name": "Lambda",
                "config": {
                    "name": "lambda",
                    "trainable": True,
                    "dtype": "float32",
                    "function": {
                        "class_name": "__lambda__",
                        "config": {"code": _LAMBDA_CODE, "defaults": None, "closure": None},
                    },
                    "output_shape": None,
                    "arguments": {},
                },
                "registered_name": None,
            },
        ]
    ),
)
_pickle(
    "nonpickle/keras_module_bypass.keras",
    "non-pickle",
    "Keras config whose activation names module 'os' / function 'getcwd' (safe_mode bypass, CVE-2025-1550 style)",
    (KERAS,),
    lambda: keras_file(
        [
            keras_dense(
                "dense",
                {"module": "os", "class_name": "function", "config": "getcwd", "registered_name": "getcwd"},
            )
        ]
    ),
)


def tf_node(
    name: str, op_name: str, inputs: tuple[str, ...] = (), attrs: dict[str, bytes] | None = None
) -> bytes:
    """A NodeDef: name=1, op=2, input=3, attr=5 (map entries key=1, AttrValue=2)."""
    body = pb_bytes(1, name) + pb_bytes(2, op_name) + b"".join(pb_bytes(3, i) for i in inputs)
    for key, value in (attrs or {}).items():
        body += pb_bytes(5, pb_bytes(1, key) + pb_bytes(2, value))
    return body


def tf_string_const(name: str, value: str) -> bytes:
    """A Const node of dtype DT_STRING (7) holding ``value``."""
    tensor = pb_varint(1, 7) + pb_bytes(2, b"") + pb_bytes(8, value)
    return tf_node(name, "Const", attrs={"dtype": pb_varint(6, 7), "value": pb_bytes(8, tensor)})


def saved_model(nodes: list[bytes], functions: list[tuple[str, list[bytes]]] = ()) -> bytes:  # type: ignore[assignment]
    """saved_model.pb: SavedModel{schema_version=1, meta_graphs=2{meta_info_def=1, graph_def=2}}."""
    library = b"".join(
        pb_bytes(1, pb_bytes(1, pb_bytes(1, fname)) + b"".join(pb_bytes(3, n) for n in fnodes))
        for fname, fnodes in functions
    )
    graph = b"".join(pb_bytes(1, n) for n in nodes) + (pb_bytes(2, library) if library else b"")
    graph += pb_bytes(4, pb_varint(1, 1994))
    meta_info = pb_bytes(1, "") + pb_bytes(4, "serve") + pb_bytes(5, "2.16.1")
    return pb_varint(1, 1) + pb_bytes(2, pb_bytes(1, meta_info) + pb_bytes(2, graph))


def _saved_model_dir(data: Callable[[], bytes]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        (path / "variables").mkdir(parents=True, exist_ok=True)
        (path / "saved_model.pb").write_bytes(data())

    return write


_add(
    "nonpickle/tf_readfile_writefile",
    "non-pickle",
    "SavedModel graph reading /etc/passwd (ReadFile) and writing a marker file (WriteFile)",
    (TF_OPS,),
    _saved_model_dir(
        lambda: saved_model(
            [
                tf_string_const("secret_path", "/etc/passwd"),
                tf_node("read", "ReadFile", ("secret_path",)),
                tf_string_const("marker_path", MARKER_PATH),
                tf_node("write", "WriteFile", ("marker_path", "read")),
            ]
        )
    ),
    pickle_based=False,
)
_add(
    "nonpickle/tf_function_library_ops",
    "non-pickle",
    "SavedModel with MatchingFiles and PrintV2-to-file hidden in the function library",
    (TF_OPS,),
    _saved_model_dir(
        lambda: saved_model(
            [tf_node("x", "Placeholder")],
            [
                (
                    "__inference_serve_7",
                    [
                        tf_string_const("pattern", "/home/*/.ssh/*"),
                        tf_node("ls", "MatchingFiles", ("pattern",)),
                        tf_node(
                            "p", "PrintV2", ("ls",), {"output_stream": pb_bytes(2, f"file://{MARKER_PATH}")}
                        ),
                    ],
                )
            ],
        )
    ),
    pickle_based=False,
)
_add(
    "nonpickle/tf_save_fixed_path",
    "non-pickle",
    "SavedModel SaveV2 writing to an attacker-chosen constant path",
    (TF_OPS,),
    _saved_model_dir(
        lambda: saved_model(
            [
                tf_string_const("prefix", "/tmp/garrison-corpus-ckpt"),
                tf_string_const("names", "w"),
                tf_string_const("slices", ""),
                tf_node("w", "Placeholder"),
                tf_node("save", "SaveV2", ("prefix", "names", "slices", "w")),
            ]
        )
    ),
    pickle_based=False,
)


def _onnx_model(*, external: str | None = None, domain: str | None = None) -> bytes:
    from onnx import TensorProto, helper

    if external is not None:
        weight = helper.make_tensor("W", TensorProto.FLOAT, [2, 2], [0.0] * 4)
        weight.ClearField("float_data")
        weight.data_location = TensorProto.EXTERNAL
        for key, value in (("location", external), ("offset", "0"), ("length", "16")):
            entry = weight.external_data.add()
            entry.key, entry.value = key, value
        node = helper.make_node("MatMul", ["X", "W"], ["Y"])
        initializers = [weight]
    else:
        node = helper.make_node("CorpusExec", ["X"], ["Y"], domain=domain)
        initializers = []
    graph = helper.make_graph(
        [node],
        "corpus",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 2])],
        initializer=initializers,
    )
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets, producer_name="garrison-corpus")
    model.ir_version = 8
    return model.SerializeToString()


_add(
    "nonpickle/onnx_external_traversal/model.onnx",
    "non-pickle",
    "ONNX initializer with external data at ../../etc/passwd",
    (ONNX,),
    _bytes_writer(lambda: _onnx_model(external="../../etc/passwd")),
    made_by="onnx",
    pickle_based=False,
)
_add(
    "nonpickle/onnx_custom_domain.onnx",
    "non-pickle",
    "ONNX node in custom op domain com.garrison.corpus",
    (ONNX,),
    _bytes_writer(lambda: _onnx_model(domain="com.garrison.corpus")),
    made_by="onnx",
    pickle_based=False,
)

_SSTI = "{{ ''.__class__.__mro__[1].__subclasses__() }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
_add(
    "nonpickle/gguf_template_mro.gguf",
    "non-pickle",
    "GGUF tokenizer.chat_template walking __class__.__mro__ to __subclasses__",
    (TEMPLATE,),
    _bytes_writer(
        lambda: gguf_file(
            {"general.architecture": "llama", "general.alignment": 32, "tokenizer.chat_template": _SSTI}
        )
    ),
    pickle_based=False,
)

_F32 = {"dtype": "F32", "shape": [2, 2]}
for _name, _technique, _data in (
    (
        "overlap",
        "two tensors whose byte ranges overlap",
        lambda: safetensors_file(
            {"a": {**_F32, "data_offsets": [0, 16]}, "b": {**_F32, "data_offsets": [8, 24]}}, bytes(24)
        ),
    ),
    (
        "out_of_bounds",
        "tensor offsets past the end of the file",
        lambda: safetensors_file({"a": {**_F32, "data_offsets": [0, 4096]}}, bytes(16)),
    ),
    (
        "oversized_header",
        "header size field of 2**40 bytes",
        lambda: safetensors_file({"a": {**_F32, "data_offsets": [0, 16]}}, bytes(16), declared_size=1 << 40),
    ),
    (
        "dtype_shape_mismatch",
        "F32 [2, 2] tensor given 12 bytes instead of 16",
        lambda: safetensors_file({"a": {**_F32, "data_offsets": [0, 12]}}, bytes(12)),
    ),
    (
        "invalid_json",
        "header that is not JSON",
        lambda: safetensors_file(
            b'{"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]', bytes(16)
        ),
    ),
):
    _add(
        f"nonpickle/safetensors_{_name}.safetensors",
        "non-pickle",
        f"safetensors header abuse: {_technique}",
        (SAFETENSORS,),
        _bytes_writer(_data),
        pickle_based=False,
    )


def _hf_remote_code(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["CorpusModel"],
        "auto_map": {
            "AutoConfig": "configuration_corpus.CorpusConfig",
            "AutoModel": "modeling_corpus.CorpusModel",
        },
        "model_type": "corpus",
    }
    (path / "config.json").write_text(json.dumps(config, indent=2))
    (path / "configuration_corpus.py").write_text("class CorpusConfig:\n    model_type = 'corpus'\n")
    (path / "modeling_corpus.py").write_text(
        f"import os\n\nos.getcwd()\n{PRINT}\n\n\nclass CorpusModel:\n    pass\n"
    )


def _hf_template(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(
        json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"})
    )
    (path / "tokenizer_config.json").write_text(json.dumps({"chat_template": _SSTI, "eos_token": "</s>"}))


_add(
    "nonpickle/hf_auto_map",
    "non-pickle",
    "HF repository: config.json auto_map to its own modeling_*.py",
    (REMOTE_CODE,),
    _hf_remote_code,
    pickle_based=False,
)
_add(
    "nonpickle/hf_chat_template_ssti",
    "non-pickle",
    "HF repository: tokenizer_config.json chat template SSTI",
    (TEMPLATE,),
    _hf_template,
    pickle_based=False,
)

SPECS: tuple[Spec, ...] = tuple(_SPECS)


def write_malicious(directory: Path) -> list[Sample]:
    """Write every malicious sample under ``directory`` and return their labels (sorted by name)."""
    for spec in SPECS:
        spec.write(directory / spec.sample.name)
    return sorted((spec.sample for spec in SPECS), key=lambda s: s.name)
