"""The team dashboard (``garrison ui``): models, audits, findings and their triage, incidents and users, served
by FastAPI with server-rendered templates over the store.

Triage edits go to the committed ``.garrison/triage.yaml`` (or come back as a patch when it is read-only), so CI's
gate sees exactly what the team decided.
"""

from garrison.ui.app import UiSettings, create_ui_app
from garrison.ui.triage_file import TriageChange, TriageOutcome, apply_change

__all__ = ["TriageChange", "TriageOutcome", "UiSettings", "apply_change", "create_ui_app"]
