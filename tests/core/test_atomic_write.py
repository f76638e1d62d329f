"""Atomic output: readers see the old content or the new one, never a part; failures leave nothing behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from garrison.core.atomic_write import atomic_output, write_atomic
from garrison.core.errors import InputError


def test_write_atomic_replaces_content_with_mode_and_creates_parents(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.txt"
    write_atomic(target, "first")
    write_atomic(target, "second ünïcode", mode=0o600)
    assert target.read_text(encoding="utf-8") == "second ünïcode"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


@pytest.mark.parametrize("buffered", [True, False])
def test_a_failure_inside_the_block_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, buffered: bool
) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def half_write() -> None:
        with atomic_output(target, buffered=buffered) as fh:
            fh.write(b"new, half written")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        half_write()
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_the_temporary_file_is_private_until_renamed(tmp_path: Path) -> None:
    target = tmp_path / "secret.bin"
    with atomic_output(target, mode=0o644) as fh:
        (tmp,) = [p for p in tmp_path.iterdir() if p.name != "secret.bin"]
        assert stat.S_IMODE(tmp.stat().st_mode) == 0o600
        assert not target.exists()
        fh.write(b"x" * 100_000)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert target.read_bytes() == b"x" * 100_000


def test_without_make_parents_a_missing_folder_is_an_input_error(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "out.bin"
    with (
        pytest.raises(InputError, match="cannot create the output"),
        atomic_output(target, make_parents=False),
    ):
        pass
    assert not (tmp_path / "missing").exists()
