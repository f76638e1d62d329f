"""The labelled corpus through `scan_paths`: every malicious file gets its verdict and rule ids, and the benign
files made by the real libraries get no finding at medium or above."""

from __future__ import annotations

import pickletools
from collections import Counter
from pathlib import Path

import pytest
from corpus import benign, malicious
from corpus.manifest import Sample, Spec, read_manifest, write_manifest

from garrison.core import Severity
from garrison.supplychain import ScanResult, scan_paths

# the technique families the issue names; each must have samples
FAMILIES = {
    "classic",
    "denylist-gap",
    "indirection",
    "parser-evasion",
    "broken-stream",
    "wrapper",
    "container",
    "non-pickle",
}


@pytest.fixture(scope="session")
def malicious_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("malicious-corpus")
    malicious.write_malicious(directory)
    return directory


@pytest.fixture(scope="session")
def benign_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, benign.BenignCorpus]:
    directory = tmp_path_factory.mktemp("benign-corpus")
    return directory, benign.write_benign(directory)


def _describe(result: ScanResult) -> str:
    lines = [f"  {f.severity.value} {f.rule_id} {f.location}: {f.message}" for f in result.findings]
    lines += [f"  incomplete {i.location}: {i.reason}" for i in result.incomplete]
    return "\n".join(lines) or "  (nothing reported)"


def _blocking_rules(result: ScanResult) -> set[str]:
    return {f.rule_id for f in result.findings if f.severity >= Severity.MEDIUM}


@pytest.mark.parametrize("spec", malicious.SPECS, ids=lambda spec: spec.sample.name)
def test_malicious_sample_gets_its_verdict(spec: Spec, malicious_dir: Path) -> None:
    sample = spec.sample
    path = malicious_dir / sample.name
    result = scan_paths([path])
    report = f"{sample.name} ({sample.technique}):\n{_describe(result)}"
    if sample.expected == "incomplete":
        assert result.incomplete, report
        assert result.exit_code() == 3, report
    else:
        found = _blocking_rules(result)
        assert found, f"missed: {report}"
        assert not sample.missing_rules(found), f"expected {sample.rules}: {report}"
        assert result.exit_code() in (1, 3), report
    for finding in result.findings:
        assert finding.location is not None and finding.location.startswith(str(path)), report


def test_malicious_archive_member_locations_name_the_member(malicious_dir: Path) -> None:
    path = malicious_dir / "container/zip_nested.zip"
    result = scan_paths([path])
    locations = {f.location for f in result.findings if f.rule_id == "GAR-SC-001"}
    assert locations == {f"{path}!weights/inner.zip!data.pkl"}, _describe(result)


def test_benign_corpus_has_no_finding_at_medium_or_above(
    benign_corpus: tuple[Path, benign.BenignCorpus],
) -> None:
    directory, corpus = benign_corpus
    assert len(corpus.samples) >= 300
    offenders: dict[str, list[str]] = {}  # what was reported (rule + message without the path) -> files
    for sample in corpus.samples:
        path = directory / sample.name
        result = scan_paths([path])
        reasons = [
            f"{f.severity.value} {f.rule_id}: {f.message}"
            for f in result.findings
            if f.severity >= Severity.MEDIUM
        ]
        reasons += [f"incomplete: {i.reason}" for i in result.incomplete]
        for reason in reasons:
            offenders.setdefault(reason.replace(str(path), "<file>"), []).append(sample.name)
    flagged = {name for names in offenders.values() for name in names}
    summary = "\n".join(
        f"  {len(names):4d} files  {reason}   e.g. {names[0]}"
        for reason, names in sorted(offenders.items(), key=lambda item: (-len(item[1]), item[0]))
    )
    assert not offenders, f"{len(flagged)} of {len(corpus.samples)} benign files flagged:\n{summary}"


def test_benign_corpus_covers_every_estimator_protocol_and_joblib_mode(
    benign_corpus: tuple[Path, benign.BenignCorpus],
) -> None:
    import sklearn.experimental.enable_halving_search_cv  # noqa: F401  (lists the Halving*SearchCV estimators)
    from sklearn.utils import all_estimators

    directory, corpus = benign_corpus
    estimators = {name for name, _ in all_estimators()}
    # every estimator is either in the corpus or skipped with its reason; none silently missing
    written = {s.name.split("/")[1].split(".")[0] for s in corpus.samples if s.family == "sklearn"}
    assert written | set(corpus.skipped) == estimators
    assert corpus.estimators_fitted == len(written) >= 0.9 * len(estimators), corpus.skipped
    protocols: Counter[int] = Counter()
    for sample in corpus.samples:
        if sample.name.endswith(".pkl") and sample.family in {"sklearn", "pandas", "numpy"}:
            first = next(pickletools.genops((directory / sample.name).read_bytes()))
            protocols[first[1] if first[0].name == "PROTO" else 0] += 1
    assert set(protocols) == set(benign.PICKLE_PROTOCOLS), protocols
    joblib_modes = {
        s.name.split(".")[-2].removeprefix("joblib-") for s in corpus.samples if s.name.endswith(".joblib")
    }
    assert joblib_modes == set(benign.JOBLIB_MODES)
    families = Counter(s.family for s in corpus.samples)
    assert {"sklearn", "pandas", "numpy", "torch"} <= set(families), families


def test_malicious_corpus_covers_every_family_the_issue_names() -> None:
    samples = [spec.sample for spec in malicious.SPECS]
    assert {s.family for s in samples} == FAMILIES
    assert len({s.name for s in samples}) == len(samples)
    assert all(s.rules or s.expected == "incomplete" for s in samples)


def test_hand_made_samples_are_deterministic(tmp_path: Path, malicious_dir: Path) -> None:
    again = malicious.write_malicious(tmp_path)
    for sample in again:
        if sample.made_by == "hand" and (tmp_path / sample.name).is_file():
            assert (tmp_path / sample.name).read_bytes() == (malicious_dir / sample.name).read_bytes(), (
                sample.name
            )


def test_hand_made_payloads_reference_only_harmless_calls(malicious_dir: Path) -> None:
    """The payloads print, read the working directory or write a marker; nothing here may do more."""
    forbidden = (b"system", b"Popen\n(", b"rm -", b"curl", b"wget", b"/bin/sh")
    for spec in malicious.SPECS:
        path = malicious_dir / spec.sample.name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            data = file.read_bytes()
            assert not any(word in data for word in forbidden), file


def test_manifest_round_trips(tmp_path: Path) -> None:
    samples = [spec.sample for spec in malicious.SPECS]
    write_manifest(samples, tmp_path / "manifest.json")
    assert read_manifest(tmp_path / "manifest.json") == sorted(samples, key=lambda s: s.name)


def test_sample_rule_alternatives() -> None:
    sample = Sample("x.pkl", "malicious", "classic", "t", ("GAR-SC-001|GAR-SC-002", "GAR-SC-003"))
    assert sample.missing_rules({"GAR-SC-002", "GAR-SC-003"}) == []
    assert sample.missing_rules({"GAR-SC-001"}) == ["GAR-SC-003"]
    with pytest.raises(ValueError, match="clean sample names no rules"):
        Sample("y.pkl", "clean", "numpy", "t", ("GAR-SC-001",))
