import importlib.util
import io
import os
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.supplychain import scan_bytes, scan_paths
from garrison.supplychain.torch_files import torchscript_source_issues

needs_pickle_machine = pytest.mark.xfail(
    importlib.util.find_spec("garrison.supplychain.pickle_machine") is None,
    reason="garrison.supplychain.pickle_machine has not landed yet",
    strict=False,
)
torch = pytest.importorskip("torch")


class Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("echo harmless",))


def _replace_member(src: Path, dst: Path, suffix: str, data: bytes) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, data if info.filename.endswith(suffix) else zin.read(info))


@needs_pickle_machine
def test_benign_torch_checkpoints_are_clean(torch_files: dict[str, Path]) -> None:
    result = scan_paths([torch_files["state_dict"], torch_files["full"], torch_files["legacy"]])
    assert result.findings == ()
    assert result.incomplete == ()


@needs_pickle_machine
def test_code_archives_are_flagged_as_code_only(torch_files: dict[str, Path]) -> None:
    result = scan_paths([torch_files["script"], torch_files["export"]])
    assert result.incomplete == ()
    assert sorted((f.rule_id, f.severity.value, f.location) for f in result.findings) == [
        ("GAR-SC-012", "medium", str(torch_files["export"])),
        ("GAR-SC-012", "medium", str(torch_files["script"])),
    ]


@needs_pickle_machine
def test_malicious_zip_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(3), "x": Evil()}, path)
    result = scan_paths([path])
    assert [(f.rule_id, f.location) for f in result.findings] == [("GAR-SC-001", f"{path}!evil/data.pkl")]


@needs_pickle_machine
def test_malicious_legacy_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "evil_legacy.pt"
    torch.save({"w": torch.zeros(3), "x": Evil()}, path, _use_new_zipfile_serialization=False)
    result = scan_paths([path])
    assert [f.rule_id for f in result.findings] == ["GAR-SC-001"]
    assert result.incomplete == ()


@needs_pickle_machine
def test_malicious_torchscript_constants(torch_files: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "evil_script.pt"
    _replace_member(torch_files["script"], path, "constants.pkl", pickle.dumps(Evil(), protocol=2))
    result = scan_paths([path])
    assert sorted(f.rule_id for f in result.findings) == ["GAR-SC-001", "GAR-SC-012"]


@needs_pickle_machine
def test_malicious_pickle_nested_in_pt2(torch_files: dict[str, Path], tmp_path: Path) -> None:
    evil_pt = tmp_path / "inner.pt"
    torch.save(Evil(), evil_pt)
    path = tmp_path / "evil.pt2"
    _replace_member(torch_files["export"], path, "sample_inputs/model.pt", evil_pt.read_bytes())
    result = scan_paths([path])
    rules = sorted((f.rule_id, f.location) for f in result.findings)
    assert rules[0] == ("GAR-SC-001", f"{path}!model/data/sample_inputs/model.pt!inner/data.pkl")
    assert ("GAR-SC-012", str(path)) in rules


def test_torchscript_source_beyond_the_runtime() -> None:
    source = "def forward(self, x):\n  y = torch.ops.mylib.run(x)\n  z = torch.ops.aten.relu(x)\n  return y\n"
    assert torchscript_source_issues(source) == [
        (2, "ops.mylib.run", "calls an operator from a custom library (native code)")
    ]
    assert torchscript_source_issues("  t = ops.aten.from_file('/etc/passwd')\n")[0][2].startswith(
        "reads a file"
    )


def _legacy_tar(object_pickle: bytes) -> bytes:
    record = b"\x80\x02X\x01\x00\x00\x000X\x03\x00\x00\x00cpuctorch\nFloatStorage\nq\x00\x87q\x01."
    storages = pickle.dumps(1, protocol=2) + record + struct.pack("<q", 2) + b"\x00" * 8 + pickle.dumps([], 2)
    members = {
        "sys_info": pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2),
        "pickle": object_pickle,
        "storages": storages,
        "tensors": pickle.dumps(0, protocol=2),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@needs_pickle_machine
def test_legacy_tar_checkpoint() -> None:
    clean = scan_bytes(_legacy_tar(pickle.dumps({"a": 1}, protocol=2)), name="old.pt")
    assert clean.files[0].format == "torch-legacy-tar"
    assert clean.findings == ()
    assert clean.incomplete == ()
    evil = scan_bytes(_legacy_tar(pickle.dumps(Evil(), protocol=2)), name="old.pt")
    assert [(f.rule_id, f.location) for f in evil.findings] == [("GAR-SC-001", "old.pt!pickle")]


def test_storage_members_are_never_read(torch_files: dict[str, Path], tmp_path: Path) -> None:
    # A storage member whose bytes would be a pickle is raw tensor data to torch: not analysed, not reported.
    path = tmp_path / "sd.pt"
    _replace_member(torch_files["state_dict"], path, "data/0", b"cos\nsystem\n(S'x'\ntR.")
    result = scan_paths([path])
    assert not any(f.location and f.location.endswith("data/0") for f in result.findings)
    assert not any(i.location.endswith("data/0") for i in result.incomplete)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_real_model_files_never_raise(torch_files: dict[str, Path], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(torch_files)))
    base = torch_files[key].read_bytes()
    i = data.draw(st.integers(0, len(base)))
    noise = data.draw(st.binary(min_size=1, max_size=32))
    mode = data.draw(st.sampled_from(["flip", "insert", "delete"]))
    if mode == "flip":
        mutated = base[:i] + bytes(b ^ 0xA5 for b in noise) + base[i + len(noise) :]
    elif mode == "insert":
        mutated = base[:i] + noise + base[i:]
    else:
        mutated = base[:i] + base[i + len(noise) :]
    result = scan_bytes(mutated, name=torch_files[key].name)
    assert result.exit_code() in (0, 1, 3)
    assert not any("scanner failed" in item.reason for item in result.incomplete), result.incomplete
