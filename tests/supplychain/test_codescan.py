from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.core.findings import Finding, SubjectKind
from garrison.core.severity import Severity
from garrison.supplychain.codescan import scan_code

HF_TOKEN = "hf_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3f"
AWS_KEY = "AKIA" + "Z7Q2M4X8B6N3V5C1"
GH_TOKEN = "ghp_" + "Zx8Vq2Lm4Nb6Kj9Hg3Fd5Sa7Pp1Oo0Ii2Uu4Y"
PEM_HEADER = "-----BEGIN RSA " + "PRIVATE KEY-----"
API_SECRET = "q8Zr2LkP0vXw9TnB4mYc"

UNSAFE = f'''\
import pickle
import torch as t
import numpy as np
import yaml
import dill, cloudpickle
import pandas as pd
from joblib import load as jl
from pickle import loads
from transformers import AutoModel

m1 = t.load("a.pt", weights_only=False)
m2 = t.load("a.pt")
p1 = pickle.load(open("f", "rb"))
p2 = loads(b"")
p3 = jl("m.joblib")
p4 = dill.loads(b"")
p5 = cloudpickle.load(open("f", "rb"))
p6 = pd.read_pickle("df.pkl")
a1 = np.load("a.npy", allow_pickle=True)
r1 = AutoModel.from_pretrained("org/x", trust_remote_code=True)
y1 = yaml.load(open("c.yml"))
y2 = yaml.unsafe_load("a: 1")
y3 = yaml.load(open("c.yml"), Loader=yaml.Loader)
e1 = eval(input())
exec(compile(open("x.py").read(), "x.py", "exec"))
HF = "{HF_TOKEN}"
aws = "{AWS_KEY}"
gh = "{GH_TOKEN}"
KEY = """{PEM_HEADER}
MIIEowIBAAKCAQEA
"""
api_secret = "{API_SECRET}"
'''

SAFE = """\
import torch
import numpy as np
import yaml
from asteval import eval as safe_eval

m = torch.load("a.pt", weights_only=True)
a = np.load("a.npy")
b = np.load("a.npy", allow_pickle=False)
c = yaml.safe_load("a: 1")
d = yaml.load("a: 1", Loader=yaml.SafeLoader)
e = yaml.load("a: 1", yaml.CSafeLoader)
f = eval("1 + 2")
g = safe_eval(user_text)
password = "changeme"
api_token = "<your-token-here>"
model = "sk-learn-is-not-a-key-at-all"
"""


def _expected_lines(source: str) -> dict[str, int]:
    return {line.split("=")[0].strip(): i for i, line in enumerate(source.splitlines(), 1) if "=" in line}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("code")
    (root / "pkg").mkdir()
    (root / "pkg" / "unsafe.py").write_text(UNSAFE)
    (root / "pkg" / "safe.py").write_text(SAFE)
    (root / "broken.py").write_text("def f(:\n    pass\n")
    (root / ".venv").mkdir()
    (root / ".venv" / "ignored.py").write_text("import pickle\npickle.loads(b'')\n")
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# eval(input()) in prose"]},
            {
                "cell_type": "code",
                "metadata": {},
                "outputs": [],
                "execution_count": 1,
                "source": ["!pip install torch\n", "%matplotlib inline\n", "import torch\n", "files = !ls\n"],
            },
            {
                "cell_type": "code",
                "metadata": {},
                "outputs": [],
                "execution_count": 2,
                "source": [
                    "for i in range(2):\n",
                    "    !echo $i\n",
                    "m = torch.load('a.pt', weights_only=False)\n",
                ],
            },
            {"cell_type": "code", "metadata": {}, "outputs": [], "source": "%%bash\nrm -rf eval(\n"},
        ],
    }
    (root / "explore.ipynb").write_text(json.dumps(notebook))
    (root / "not_a_notebook.ipynb").write_text("{not json")
    return root


@pytest.fixture(scope="module")
def result(tree: Path):
    here = Path.cwd()
    os.chdir(tree)  # scanned as `garrison scan --code .` would: locations relative to the working directory
    try:
        return scan_code(Path("."))
    finally:
        os.chdir(here)


def _at(result, suffix: str) -> list[Finding]:
    return [f for f in result.findings if f.location and f.location.startswith(suffix)]


def test_each_unsafe_pattern_is_found_at_its_line(result) -> None:
    found = {(f.rule_id, f.line) for f in _at(result, "pkg/unsafe.py") if f.rule_id != "GAR-CS-100"}
    lines = _expected_lines(UNSAFE)
    expected = {
        *{("GAR-CS-001", lines[n]) for n in ("m1", "m2", "p1", "p2", "p3", "p4", "p5", "p6", "a1")},
        ("GAR-CS-002", lines["r1"]),
        *{("GAR-CS-003", lines[n]) for n in ("y1", "y2", "y3")},
        ("GAR-CS-004", lines["e1"]),
        ("GAR-CS-004", UNSAFE.splitlines().index('exec(compile(open("x.py").read(), "x.py", "exec"))') + 1),
        *{("GAR-CS-005", lines[n]) for n in ("HF", "aws", "gh", "KEY", "api_secret")},
    }
    assert found == expected


def test_findings_are_code_findings_with_file_line_locations(result) -> None:
    for f in _at(result, "pkg/unsafe.py"):
        assert f.subject.kind is SubjectKind.CODE and f.subject.name == "."
        assert f.location == "pkg/unsafe.py" and f.line is not None
        assert f.symbol and f.symbol.split(":")[-1].isalnum()
    # weights_only missing is weaker than weights_only=False
    torch_loads = sorted(
        (f.line, f.severity)
        for f in _at(result, "pkg/unsafe.py")
        if f.evidence_dict().get("call") == "torch.load"
    )
    assert [s for _, s in torch_loads] == [Severity.HIGH, Severity.MEDIUM]


def test_safe_patterns_are_not_reported(result) -> None:
    ours = [f for f in _at(result, "pkg/safe.py") if f.rule_id != "GAR-CS-100"]
    assert ours == []
    bandit = [f for f in _at(result, "pkg/safe.py") if f.rule_id == "GAR-CS-100"]
    assert all(f.severity < Severity.MEDIUM for f in bandit), [f.message for f in bandit]
    # bandit's eval warning on the literal eval("1 + 2") is dropped with ours
    assert not any(f.evidence_dict()["test_id"] == "B307" for f in bandit)


def test_secrets_never_appear_in_findings(result) -> None:
    secrets = (HF_TOKEN, AWS_KEY, GH_TOKEN, API_SECRET, "MIIEowIBAAKCAQEA", "changeme")
    text = json.dumps([f.to_dict() for f in result.findings])
    for secret in secrets:
        assert secret not in text
        assert secret[4:16] not in text
    hf = next(f for f in result.findings if f.evidence_dict().get("kind") == "Hugging Face token")
    assert hf.evidence_dict()["redacted"] == "hf_a…"
    assert len(hf.evidence_dict()["sha256_12"]) == 12


def test_bandit_findings_map_severity_and_evidence(result) -> None:
    bandit = [f for f in result.findings if f.rule_id == "GAR-CS-100"]
    assert bandit
    for f in bandit:
        ev = f.evidence_dict()
        assert set(ev) == {"test_id", "test_name", "confidence"}
        assert ev["test_id"].startswith("B")
    # no double report: our pickle/yaml/eval/exec/torch findings suppress bandit's at the same line
    ours = {
        f.line
        for f in _at(result, "pkg/unsafe.py")
        if f.rule_id in ("GAR-CS-001", "GAR-CS-003", "GAR-CS-004")
    }
    covered = {"B301", "B614", "B506", "B307", "B102"}
    dupes = [f for f in bandit if f.line in ours and f.evidence_dict()["test_id"] in covered]
    assert dupes == []
    # the import of pickle (B403) is not one of ours, so bandit's finding stays
    assert any(
        f.evidence_dict().get("test_id") == "B403" and f.line == 1 for f in _at(result, "pkg/unsafe.py")
    )


def test_notebook_cells_magics_and_locations(result) -> None:
    nb = _at(result, "explore.ipynb")
    assert [(f.rule_id, f.location, f.line) for f in nb if f.rule_id != "GAR-CS-100"] == [
        ("GAR-CS-001", "explore.ipynb", None)
    ]
    assert nb[0].symbol is not None and nb[0].symbol.startswith("cell3:")
    ev = nb[0].evidence_dict()
    assert ev["cell"] == 3 and ev["cell_line"] == 3


def test_unparseable_files_are_incomplete_and_hidden_dirs_skipped(result) -> None:
    where = sorted(i.location for i in result.incomplete)
    assert where == ["broken.py", "not_a_notebook.ipynb"]
    assert result.exit_code() == 3
    scanned = sorted(s.location for s in result.files)
    assert scanned == ["broken.py", "explore.ipynb", "not_a_notebook.ipynb", "pkg/safe.py", "pkg/unsafe.py"]
    assert not any(".venv" in (f.location or "") for f in result.findings)


def test_root_as_given_prefixes_locations(tree: Path) -> None:
    res = scan_code(tree / "pkg", bandit=False)
    assert {f.location for f in res.findings} == {f"{(tree / 'pkg').as_posix()}/unsafe.py"}
    single = scan_code(tree / "pkg" / "unsafe.py", bandit=False)
    assert {f.location for f in single.findings} == {str(tree / "pkg" / "unsafe.py")}


def test_missing_root_is_an_input_error(tmp_path: Path) -> None:
    from garrison.core.errors import InputError

    with pytest.raises(InputError):
        scan_code(tmp_path / "absent")


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_a_report_never_an_exception(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "x.py").write_text(text, encoding="utf-8", errors="surrogatepass")
    (root / "x.ipynb").write_text(text, encoding="utf-8", errors="surrogatepass")
    res = scan_code(root, bandit=False)
    assert len(res.files) == 2


def test_code_too_deep_to_analyse_is_incomplete(tmp_path: Path) -> None:
    (tmp_path / "deep.py").write_text("x = " + "+".join(["1"] * 20000) + "\n")
    res = scan_code(tmp_path)
    assert [i.location for i in res.incomplete] == [f"{tmp_path.as_posix()}/deep.py"]
    assert res.exit_code() == 3


def test_fingerprints_survive_edits_that_shift_lines(tmp_path: Path) -> None:
    src = tmp_path / "train.py"
    src.write_text("import pickle\n\nmodel = pickle.load(open('m.pkl', 'rb'))\n")
    before = {(f.rule_id, f.fingerprint, f.line) for f in scan_code(src, bandit=False).findings}
    src.write_text("import pickle\n\n# a comment\n\nmodel = pickle.load(open('m.pkl', 'rb'))\n")
    after = {(f.rule_id, f.fingerprint, f.line) for f in scan_code(src, bandit=False).findings}
    assert {fp for _, fp, _ in before} == {fp for _, fp, _ in after}
    assert {line for *_, line in before} != {line for *_, line in after}
