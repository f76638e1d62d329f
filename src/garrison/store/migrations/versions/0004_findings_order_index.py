"""An index on the columns that order the findings list, so that the dashboard pages it in the database.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_findings_order",
        "findings",
        ["severity", "stage", "rule_id", "location", "fingerprint"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_findings_order", table_name="findings")
