from garrison.supplychain import Blob, ScanContext
from garrison.supplychain.formats import FORMATS
from garrison.supplychain.router import DIRECTORY_SCANNERS, SCANNERS, dispatch, resolve_scanner


def test_every_detected_format_has_a_route_or_is_unsupported() -> None:
    unsupported = {"7z", "zstd", "lz4", "rar"}
    assert set(FORMATS) - unsupported == set(SCANNERS)


def test_scanner_specs_resolve_or_are_missing_modules() -> None:
    for spec in [*SCANNERS.values(), *DIRECTORY_SCANNERS.values()]:
        if spec is None:
            continue
        module, _, func = spec.lstrip("?").partition(":")
        assert module.startswith("garrison.supplychain.") and func.startswith("scan_")
    assert resolve_scanner("garrison.supplychain.archives:scan_zip") is not None
    assert resolve_scanner("garrison.supplychain.no_such_module:scan_x") is None


def test_a_missing_scanner_module_is_incomplete_never_clean(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import garrison.supplychain.router as router

    monkeypatch.setitem(router.SCANNERS, "gguf", "garrison.supplychain.not_written_yet:scan_gguf")  # type: ignore[index]
    ctx = ScanContext()
    dispatch(Blob.from_bytes(b"GGUF\x03\x00\x00\x00" + bytes(16), "m.gguf"), ctx)
    (item,) = ctx.result().incomplete
    assert item.reason == "no scanner for gguf"


def test_unsupported_format_is_incomplete() -> None:
    ctx = ScanContext()
    dispatch(Blob.from_bytes(b"\x28\xb5\x2f\xfd" + bytes(20), "m.zst"), ctx)
    assert "zstd" in ctx.result().incomplete[0].reason
