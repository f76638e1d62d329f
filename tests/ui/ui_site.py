"""What the UI tests share besides fixtures: the users' passwords, the running site's handles, and signing in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from garrison.core import Report
from garrison.store import Store

PASSWORDS = {"alice": "admin-pass-123", "tom": "triager-pass-123", "vera": "viewer-pass-123"}
ROLES = {"alice": "admin", "tom": "triager", "vera": "viewer"}
GATE_RULE = "GAR-DI-005"  # the one finding the tests leave open: accepting its risk turns the gate green


@dataclass(frozen=True)
class Audited:
    config: Path
    report: Report


@dataclass
class Site:
    url: str
    root: Path
    store: Store
    audit_id: int
    previous_id: int
    gate_fingerprint: str
    incident_id: int

    @property
    def triage_file(self) -> Path:
        return self.root / ".garrison" / "triage.yaml"


CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def login(site: Site, name: str) -> httpx.Client:
    client = httpx.Client(base_url=site.url, follow_redirects=False, timeout=30)
    form = client.get("/login")
    token = CSRF_FIELD.search(form.text).group(1)  # type: ignore[union-attr]
    r = client.post("/login", data={"name": name, "password": PASSWORDS[name], "csrf_token": token})
    assert r.status_code == 303, r.text
    return client


@contextmanager
def signed_in(site: Site, name: str) -> Iterator[httpx.Client]:
    client = login(site, name)
    try:
        yield client
    finally:
        client.close()


def csrf_of(client: httpx.Client, path: str = "/") -> str:
    return CSRF_FIELD.search(client.get(path).text).group(1)  # type: ignore[union-attr]
