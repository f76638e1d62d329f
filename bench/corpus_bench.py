"""Detection and false positives of Garrison, ModelScan, picklescan and fickling on the labelled corpus.

Generates the corpus (tests/supplychain/corpus) into a temporary directory, plus samples made with fickling's own
injection API from benign files (reported separately: a corpus built beside the scanner is easy to overfit),
scans every file with each tool and prints markdown tables per technique family and totals.

Garrison runs in-process (`scan_paths`, one call per file); each peer runs in its own virtual environment
(`make bench-env`) through a small runner in bench/peers/ that uses the peer's Python API, one process for
all files. A peer whose venv is missing is left out and named.

Usage: .venv/bin/python bench/corpus_bench.py [--json results.json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "supplychain"))

from corpus import benign, malicious  # noqa: E402
from corpus.manifest import Sample  # noqa: E402

PEERS = ("modelscan", "picklescan", "fickling")
TOOLS = ("garrison", *PEERS)


def peer_python(peer: str) -> Path:
    return ROOT / f".bench-env-{peer}" / "bin" / "python"


def garrison_verdicts(paths: Sequence[Path]) -> tuple[dict[str, str], float]:
    """flagged (a finding at medium or above), incomplete (exit 3, nothing found), or clean."""
    from garrison.core import Severity
    from garrison.supplychain import scan_paths

    verdicts: dict[str, str] = {}
    start = time.perf_counter()
    for path in paths:
        try:
            result = scan_paths([path])
        except Exception as error:
            verdicts[str(path)] = f"error: {type(error).__name__}"
            continue
        if any(f.severity >= Severity.MEDIUM for f in result.findings):
            verdicts[str(path)] = "flagged"
        elif result.incomplete:
            verdicts[str(path)] = "incomplete"
        else:
            verdicts[str(path)] = "clean"
    return verdicts, time.perf_counter() - start


def peer_verdicts(peer: str, paths: Sequence[Path], workdir: Path) -> tuple[dict[str, str], float]:
    listing = workdir / f"{peer}-paths.json"
    listing.write_text(json.dumps([str(p) for p in paths]))
    start = time.perf_counter()
    completed = subprocess.run(
        [str(peer_python(peer)), str(ROOT / "bench" / "peers" / f"{peer}_runner.py"), str(listing)],
        capture_output=True,
        text=True,
        timeout=3600,
        check=True,
        cwd=workdir,  # fickling writes a safety_results.json beside it; keep that out of the repository
    )
    elapsed = time.perf_counter() - start
    return {r["path"]: r["verdict"] for r in json.loads(completed.stdout)}, elapsed


def fickling_samples(
    benign_dir: Path, corpus: benign.BenignCorpus, out_dir: Path
) -> tuple[list[Sample], list[dict]]:
    """Inject fickling payloads into a deterministic selection of benign files."""
    picks: list[str] = []
    quota = {"sklearn": 16, "pandas": 4, "numpy": 4}
    for sample in corpus.samples:
        name = sample.name
        if (
            sample.family in quota
            and quota[sample.family]
            and name.endswith((".p2.pkl", ".p3.pkl", ".p4.pkl"))
        ):
            quota[sample.family] -= 1
            picks.append(name)
        elif sample.family == "torch" and name.endswith((".module.zip.pt", ".state_dict.zip.pt")):
            picks.append(name)
    sources = out_dir.parent / "fickling-sources.json"
    sources.write_text(json.dumps([str(benign_dir / name) for name in picks]))
    completed = subprocess.run(
        [
            str(peer_python("fickling")),
            str(ROOT / "bench" / "peers" / "fickling_inject.py"),
            str(out_dir),
            str(sources),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    made = json.loads(completed.stdout)
    samples = [
        Sample(m["name"], "malicious", "fickling-inject", m["technique"], ("GAR-SC-001",), "fickling")
        for m in made["made"]
    ]
    return samples, made["failed"]


def caught(sample: Sample, verdict: str) -> bool:
    if sample.expected == "incomplete":  # refusing to call it clean is the right answer
        return verdict in ("flagged", "incomplete") or verdict.startswith("error")
    return verdict == "flagged"


def detection_table(
    samples: Sequence[Sample], base: Path, results: dict[str, dict[str, str]], tools: Sequence[str]
) -> str:
    rows: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        rows[sample.family].append(sample)
    head = "| family | files | " + " | ".join(tools) + " |\n|---|---:|" + "---:|" * len(tools) + "\n"
    lines = []
    totals = dict.fromkeys(tools, 0)
    errors = dict.fromkeys(tools, 0)
    pickle_totals = dict.fromkeys(tools, 0)
    for family, members in sorted(rows.items()):
        cells = []
        for tool in tools:
            hits = sum(caught(s, results[tool][str(base / s.name)]) for s in members)
            totals[tool] += hits
            pickle_totals[tool] += sum(
                caught(s, results[tool][str(base / s.name)]) for s in members if s.pickle_based
            )
            errors[tool] += sum(results[tool][str(base / s.name)].startswith("error") for s in members)
            cells.append(f"{hits}")
        lines.append(f"| {family} | {len(members)} | " + " | ".join(cells) + " |")
    n_pickle = sum(s.pickle_based for s in samples)
    lines.append(
        f"| **total** | **{len(samples)}** | " + " | ".join(f"**{totals[t]}**" for t in tools) + " |"
    )
    lines.append(
        f"| pickle-based only | {n_pickle} | " + " | ".join(str(pickle_totals[t]) for t in tools) + " |"
    )
    lines.append("| ended in error | | " + " | ".join(str(errors[t]) for t in tools) + " |")
    return head + "\n".join(lines)


def false_positive_table(
    samples: Sequence[Sample], base: Path, results: dict[str, dict[str, str]], tools: Sequence[str]
) -> str:
    rows: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        rows[sample.family].append(sample)
    head = "| family | files | " + " | ".join(tools) + " |\n|---|---:|" + "---:|" * len(tools) + "\n"
    lines = []
    for family, members in sorted(rows.items()):
        cells = []
        for tool in tools:
            verdicts = [results[tool][str(base / s.name)] for s in members]
            flagged = sum(v == "flagged" for v in verdicts)
            other = sum(v not in ("flagged", "clean") for v in verdicts)
            cells.append(f"{flagged}" + (f" (+{other} err/skip)" if other else ""))
        lines.append(f"| {family} | {len(members)} | " + " | ".join(cells) + " |")
    cells = []
    for tool in tools:
        verdicts = [results[tool][str(base / s.name)] for s in samples]
        flagged = sum(v == "flagged" for v in verdicts)
        other = sum(v not in ("flagged", "clean") for v in verdicts)
        cells.append(f"**{flagged}**" + (f" (+{other} err/skip)" if other else ""))
    lines.append(f"| **total** | **{len(samples)}** | " + " | ".join(cells) + " |")
    return head + "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", type=Path, help="write every per-file verdict here")
    parser.add_argument(
        "--keep", type=Path, help="generate the corpus here and keep it (default: a temp dir)"
    )
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="garrison-corpus-bench-"))
    try:
        mal_dir, ben_dir, fick_dir = work / "malicious", work / "benign", work / "fickling"
        mal_samples = malicious.write_malicious(mal_dir)
        ben_corpus = benign.write_benign(ben_dir)
        ben_samples = ben_corpus.samples
        tools = ["garrison"] + [p for p in PEERS if peer_python(p).exists()]
        missing = [p for p in PEERS if p not in tools]
        fick_samples, fick_failed = ([], [])
        if peer_python("fickling").exists():
            fick_samples, fick_failed = fickling_samples(ben_dir, ben_corpus, fick_dir)
        groups = [(mal_samples, mal_dir), (ben_samples, ben_dir), (fick_samples, fick_dir)]
        paths = [base / s.name for samples, base in groups for s in samples]
        results: dict[str, dict[str, str]] = {}
        seconds: dict[str, float] = {}
        results["garrison"], seconds["garrison"] = garrison_verdicts(paths)
        for peer in tools[1:]:
            results[peer], seconds[peer] = peer_verdicts(peer, paths, work)

        print(
            f"corpus: {len(mal_samples)} malicious, {len(ben_samples)} benign "
            f"({ben_corpus.estimators_fitted} scikit-learn estimators; skipped: {ben_corpus.skipped or 'none'}), "
            f"{len(fick_samples)} fickling-injected ({len(fick_failed)} sources fickling could not parse)"
        )
        if missing:
            print(f"left out (no venv; run `make bench-env`): {', '.join(missing)}")
        print(
            "\n### Malicious corpus: files caught (a finding / an issue; for the 7z sample, refusing to say clean)\n"
        )
        print(detection_table(mal_samples, mal_dir, results, tools))
        print("\n### Benign corpus: false positives (files flagged)\n")
        print(false_positive_table(ben_samples, ben_dir, results, tools))
        if fick_samples:
            print("\n### Samples made with fickling's own injection API (not from our corpus)\n")
            print(detection_table(fick_samples, fick_dir, results, tools))
        print("\n### Wall time over all files\n")
        print("| " + " | ".join(tools) + " |\n|" + "---:|" * len(tools))
        print("| " + " | ".join(f"{seconds[t]:.1f} s" for t in tools) + " |")
        missed = {
            tool: [
                s.name
                for samples, base in groups[:1] + groups[2:]
                for s in samples
                if not caught(s, results[tool][str(base / s.name)])
            ]
            for tool in tools
        }
        flagged_benign = {
            t: [s.name for s in ben_samples if results[t][str(ben_dir / s.name)] == "flagged"] for t in tools
        }
        for label, table in (("missed", missed), ("false positives", flagged_benign)):
            names = table["garrison"]
            shown = ", ".join(names[:20]) + (f", ... ({len(names) - 20} more)" if len(names) > 20 else "")
            print(f"\nGarrison {label} ({len(names)}): {shown or 'none'}")
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "results": results,
                        "seconds": seconds,
                        "missed": missed,
                        "false_positives": flagged_benign,
                    },
                    indent=1,
                    sort_keys=True,
                )
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
