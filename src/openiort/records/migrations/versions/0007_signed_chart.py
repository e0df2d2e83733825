"""The signed chart: each approval keeps the chart it signed (patient details and signature
lines, referencing the plan's seal) with its HMAC and key id (openiort.records.chart_seal).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("plan_approvals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chart_json", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("chart_hmac", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("chart_key_id", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("plan_approvals", schema=None) as batch_op:
        batch_op.drop_column("chart_key_id")
        batch_op.drop_column("chart_hmac")
        batch_op.drop_column("chart_json")
