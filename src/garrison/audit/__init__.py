"""Audits: the check contract and registry, the runner, the policy gate and the demo."""

from garrison.audit.budget import Budget
from garrison.audit.check import ENTRY_POINT_GROUP, Check, CheckRegistry, default_registry
from garrison.audit.context import AuditContext
from garrison.audit.demo import DemoResult, run_demo, write_demo_project
from garrison.audit.evaluate import evaluate
from garrison.audit.progress import NullProgress, Progress, ProgressTask
from garrison.audit.runner import DEFAULT_BUDGET_S, PlannedCheck, audit, plan_checks, run_checks

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
