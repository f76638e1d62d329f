"""An index on the order of the incidents list (newest first), so that a page of it does not sort the table.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_incidents_opened", "incidents", ["opened_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_incidents_opened", table_name="incidents")
