import io
import os
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.core import InputError
from garrison.supplychain import ScanLimits, scan_bytes, scan_paths

TEXT = b"plain notes\n"


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_directory_scan_is_recursive_sorted_and_named_as_given(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "sub").mkdir(parents=True)
    (root / "b.txt").write_bytes(TEXT)
    (root / "a.txt").write_bytes(TEXT)
    (root / "sub" / "c.zip").write_bytes(_zip({"inner/notes.txt": TEXT}))
    result = scan_paths([str(root)])
    assert [f.location for f in result.files] == [
        f"{root}/a.txt",
        f"{root}/b.txt",
        f"{root}/sub/c.zip",
        f"{root}/sub/c.zip!inner/notes.txt",
    ]
    assert result.exit_code() == 0


def test_relative_paths_stay_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("models").mkdir()
    Path("models/x.txt").write_bytes(TEXT)
    result = scan_paths(["models", Path("models/x.txt")])
    assert [f.location for f in result.files] == ["models/x.txt", "models/x.txt"]


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        scan_paths([tmp_path / "nope.pkl"])


def test_symlink_out_of_the_tree_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(TEXT)
    root = tmp_path / "repo"
    root.mkdir()
    (root / "inside.txt").write_bytes(TEXT)
    os.symlink(outside, root / "escape.txt")
    os.symlink(root / "inside.txt", root / "alias.txt")
    os.symlink(tmp_path, root / "up")
    result = scan_paths([root])
    assert sorted(i.location for i in result.incomplete) == [f"{root}/escape.txt", f"{root}/up"]
    assert [f.location for f in result.files] == [f"{root}/inside.txt"]
    assert result.exit_code() == 3


def test_fifo_is_not_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = scan_paths([fifo])
    assert result.incomplete[0].reason == "not a regular file; not read"


def test_timeout_makes_the_file_incomplete() -> None:
    nested = _zip({f"{i}.txt": TEXT for i in range(50)})
    result = scan_bytes(nested, name="a.zip", limits=ScanLimits(timeout_s=1e-9))
    assert [i.limit for i in result.incomplete] == ["timeout_s"]


def test_digest_and_findings_carry_the_file_sha256(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "a.zip"
    path.write_bytes(_zip({"../escape.txt": TEXT}))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    result = scan_paths([path])
    (finding,) = result.findings
    assert finding.subject.sha256 == sha
    assert finding.subject.name == str(path)
    assert result.files[0].sha256 == sha
    plain = tmp_path / "b.txt"
    plain.write_bytes(TEXT)
    assert scan_paths([plain]).files[0].sha256 is None
    assert scan_paths([plain], digest=True).files[0].sha256 == hashlib.sha256(TEXT).hexdigest()


def test_progress_is_called_per_file(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(TEXT)
    seen: list[str] = []
    scan_paths([tmp_path], progress=seen.append)
    assert seen == [f"{tmp_path}/a.txt"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes_always_give_a_result(data: bytes) -> None:
    result = scan_bytes(data, name="random.bin")
    assert result.exit_code() in (0, 1, 3)
    assert len(result.files) >= 1
    assert not any("failed" in item.reason for item in result.incomplete), result.incomplete
