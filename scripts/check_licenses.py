"""Fail when a runtime dependency of garrison (its closure with every runtime extra) is under GPL, AGPL, SSPL or
the Business Source License (SPDX BUSL-1.1; BSL-1.0 is the permissive Boost licence). LGPL (weak copyleft, used as a library) is allowed and listed.

Usage: python scripts/check_licenses.py [--extras torch,onnx,postgres,signing,codescan]
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import metadata

from packaging.requirements import Requirement

DENIED = re.compile(
    r"\b(A?GPL|GNU (Affero )?General Public|SSPL|Server Side Public|BUSL|Business Source)", re.I
)
LESSER = re.compile(r"\b(LGPL|Lesser General Public|Library General Public)", re.I)


def licence_of(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    parts = [meta.get("License-Expression") or ""]
    licence = meta.get("License") or ""
    if len(licence) < 200:  # some packages paste the whole licence text here
        parts.append(licence)
    parts += [
        c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")
    ]
    return "; ".join(p for p in parts if p) or "UNKNOWN"


def closure(root: str, extras: set[str]) -> dict[str, metadata.Distribution]:
    seen: dict[str, metadata.Distribution] = {}
    stack: list[tuple[str, set[str]]] = [(root, extras)]
    while stack:
        name, wanted = stack.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if key in seen and not wanted:
            continue
        seen[key] = dist
        for raw in dist.requires or []:
            req = Requirement(raw)
            env = {"extra": ""}
            active = (
                req.marker is None
                or req.marker.evaluate(env)
                or any(req.marker.evaluate({"extra": e}) for e in wanted)
            )
            if active and re.sub(r"[-_.]+", "-", req.name).lower() not in seen:
                stack.append((req.name, set(req.extras)))
    seen.pop("garrison", None)
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--extras", default="torch,onnx,postgres,signing,codescan")
    args = parser.parse_args()
    deps = closure("garrison", set(filter(None, args.extras.split(","))))
    bad = []
    for key in sorted(deps):
        lic = licence_of(deps[key])
        if DENIED.search(LESSER.sub("", lic)):
            bad.append(f"{key}: {lic}")
        elif LESSER.search(lic):
            print(f"note: {key} is weak copyleft ({lic}); allowed as a library")
    print(f"checked {len(deps)} runtime dependencies")
    for line in bad:
        print(f"DENIED licence: {line}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
