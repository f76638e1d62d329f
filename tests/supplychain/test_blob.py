from pathlib import Path

from garrison.supplychain import Blob


def test_from_path_maps_the_file_zero_copy(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"hello world")
    with Blob.from_path(path, "f.bin") as blob:
        assert blob.size == 11
        assert blob.path == path
        assert blob.depth == 0
        assert blob.head(5) == b"hello"
        assert blob.tail(5) == b"world"
        assert bytes(blob.view()[6:]) == b"world"


def test_empty_file_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with Blob.from_path(path, "empty") as blob:
        assert blob.size == 0
        assert blob.head() == b""


def test_child_names_the_member_and_nests_one_level_deeper() -> None:
    outer = Blob.from_bytes(b"abcdef", "a.zip")
    inner = outer.child(outer.view()[2:4], "b.zip")
    leaf = inner.child(b"x", "c.pkl")
    assert inner.location == "a.zip!b.zip"
    assert leaf.location == "a.zip!b.zip!c.pkl"
    assert (inner.depth, leaf.depth) == (1, 2)
    assert inner.head() == b"cd"
    assert inner.path is None


def test_close_with_a_slice_still_alive_does_not_raise(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789")
    blob = Blob.from_path(path, "f.bin")
    part = blob.view()[2:5]
    blob.close()
    assert bytes(part) == b"234"
    blob.close()
