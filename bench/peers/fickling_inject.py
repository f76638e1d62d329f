"""Malicious samples made with fickling's own injection API (run with .bench-env-fickling/bin/python).

``python fickling_inject.py OUT_DIR SOURCES.json``: for each benign source file, write injected copies into
OUT_DIR and print a JSON list of {"name", "source", "technique"}. Raw pickles get the four injections fickling's
CLI offers (`--inject` eval run first, `--run-last`, `--replace-result`, and `insert_python_exec`); torch zip
checkpoints get fickling.pytorch's "insertion" into data.pkl (done here with the same Pickled API, because
fickling.pytorch needs torch in this venv). The payload only prints.
"""

from __future__ import annotations

import io
import json
import os
import sys
import zipfile

from fickling.fickle import Pickled, StackedPickle

PAYLOAD = "print('garrison bench: fickling payload')"

_VARIANTS = {
    "eval-first": {"method": "insert_python_eval", "run_first": True, "use_output_as_unpickle_result": False},
    "eval-run-last": {
        "method": "insert_python_eval",
        "run_first": False,
        "use_output_as_unpickle_result": False,
    },
    "eval-replace-result": {
        "method": "insert_python_eval",
        "run_first": True,
        "use_output_as_unpickle_result": True,
    },
    "exec-first": {"method": "insert_python_exec", "run_first": True, "use_output_as_unpickle_result": False},
}


def _inject(pickled: Pickled, variant: dict[str, object]) -> None:
    options = dict(variant)
    method = getattr(pickled, str(options.pop("method")))
    method(PAYLOAD, **options)


def main() -> int:
    out_dir = sys.argv[1]
    with open(sys.argv[2]) as handle:
        sources = json.load(handle)
    os.makedirs(out_dir, exist_ok=True)
    made, failed = [], []
    for source in sources:
        try:
            made.extend(_inject_file(source, out_dir))
        except Exception as error:  # fickling cannot parse every pickle (e.g. protocol 5 BYTEARRAY8)
            failed.append({"source": source, "error": f"{type(error).__name__}: {error}"[:200]})
    json.dump({"made": made, "failed": failed}, sys.stdout)
    return 0


def _inject_file(source: str, out_dir: str) -> list[dict[str, str]]:
    made = []
    stem = os.path.basename(source).replace(".", "_")
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            members = {info.filename: archive.read(info) for info in archive.infolist()}
        data_pkl = next(name for name in members if name.endswith("/data.pkl"))
        pickled = Pickled.load(io.BytesIO(members[data_pkl]))
        pickled.insert_python_exec(PAYLOAD)
        members[data_pkl] = pickled.dumps()
        name = f"{stem}.insertion.pt"
        with zipfile.ZipFile(os.path.join(out_dir, name), "w") as archive:
            for member, data in members.items():
                archive.writestr(member, data)
        made.append({"name": name, "source": source, "technique": "fickling.pytorch insertion into data.pkl"})
        return made
    for variant_name, variant in _VARIANTS.items():
        with open(source, "rb") as handle:
            stacked = StackedPickle.load(handle, fail_on_decode_error=False)
        _inject(stacked[0], variant)
        name = f"{stem}.{variant_name}.pkl"
        with open(os.path.join(out_dir, name), "wb") as handle:
            for pickled in stacked:
                pickled.dump(handle)
        made.append({"name": name, "source": source, "technique": f"fickling {variant_name}"})
    return made


if __name__ == "__main__":
    raise SystemExit(main())
