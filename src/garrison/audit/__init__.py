"""Audits: the check contract and registry, the runner, the policy gate and the demo.

Names are resolved lazily (PEP 562): gating a report with :func:`evaluate` does not import the audit runner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from garrison.core.lazy import lazy_exports

if TYPE_CHECKING:
    from garrison.audit.budget import Budget
    from garrison.audit.check import ENTRY_POINT_GROUP, Check, CheckRegistry, default_registry
    from garrison.audit.context import AuditContext
    from garrison.audit.demo import DemoResult, run_demo, write_demo_project
    from garrison.audit.evaluate import evaluate
    from garrison.audit.progress import NullProgress, Progress, ProgressTask
    from garrison.audit.runner import DEFAULT_BUDGET_S, PlannedCheck, audit, plan_checks, run_checks

# name -> module under garrison.audit
_EXPORTS = {
    "Budget": "budget",
    "ENTRY_POINT_GROUP": "check",
    "Check": "check",
    "CheckRegistry": "check",
    "default_registry": "check",
    "AuditContext": "context",
    "DemoResult": "demo",
    "run_demo": "demo",
    "write_demo_project": "demo",
    "evaluate": "evaluate",
    "NullProgress": "progress",
    "Progress": "progress",
    "ProgressTask": "progress",
    "DEFAULT_BUDGET_S": "runner",
    "PlannedCheck": "runner",
    "audit": "runner",
    "plan_checks": "runner",
    "run_checks": "runner",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "DEFAULT_BUDGET_S",
    "ENTRY_POINT_GROUP",
    "AuditContext",
    "Budget",
    "Check",
    "CheckRegistry",
    "DemoResult",
    "NullProgress",
    "PlannedCheck",
    "Progress",
    "ProgressTask",
    "audit",
    "default_registry",
    "evaluate",
    "plan_checks",
    "run_checks",
    "run_demo",
    "write_demo_project",
]
