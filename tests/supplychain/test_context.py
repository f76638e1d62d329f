import time

import pytest

from garrison.core import Severity
from garrison.core.rules import SC_ARCHIVE
from garrison.supplychain import Blob, LimitHit, ScanContext, ScanLimits


def test_report_names_the_top_level_file_as_subject() -> None:
    ctx = ScanContext()
    ctx.begin_file("dir/a.zip", None, 10)
    blob = Blob.from_bytes(b"x", "dir/a.zip").child(b"y", "inner.pkl")
    ctx.report(SC_ARCHIVE, blob, "odd", evidence={"member": "inner.pkl"}, severity=Severity.LOW)
    ctx.end_file("ab" * 32)
    (finding,) = ctx.result().findings
    assert finding.location == "dir/a.zip!inner.pkl"
    assert finding.subject.name == "dir/a.zip"
    assert finding.subject.sha256 == "ab" * 32
    assert finding.severity is Severity.LOW
    assert finding.check_id == "scan"
    assert finding.evidence_dict() == {"member": "inner.pkl"}


def test_deadline_raises_limit_hit() -> None:
    ctx = ScanContext(limits=ScanLimits(timeout_s=0.001))
    ctx.begin_file("f", None)
    time.sleep(0.01)
    with pytest.raises(LimitHit) as info:
        ctx.check_deadline()
    assert info.value.limit == "timeout_s"


def test_scan_child_beyond_the_nesting_depth_is_incomplete() -> None:
    ctx = ScanContext(limits=ScanLimits(max_nesting_depth=1))
    blob = Blob.from_bytes(b"text", "a").child(b"b", "b").child(b"c", "c")
    ctx.scan_child(blob)
    (item,) = ctx.result().incomplete
    assert item.location == "a!b!c"
    assert item.limit == "max_nesting_depth"


def test_decompression_budget_is_shared_by_the_whole_file() -> None:
    ctx = ScanContext(limits=ScanLimits(max_decompression_ratio=2))
    ctx.begin_file("f", None, 1 << 20)
    ctx.charge_decompressed(1 << 20)
    ctx.charge_decompressed(1 << 20)
    with pytest.raises(LimitHit) as info:
        ctx.charge_decompressed(1)
    assert info.value.limit == "max_decompression_ratio"


def test_limits_are_validated() -> None:
    from garrison.core import ConfigError

    with pytest.raises(ConfigError, match="max_nesting_depth"):
        ScanLimits(max_nesting_depth=0)
    with pytest.raises(ConfigError, match="unknown scan limit"):
        ScanLimits.from_mapping({"max_depth": 3})
    assert ScanLimits.from_mapping({"timeout_s": 5}).timeout_s == 5
