"""Deliveries record the conditions of the day they were checked against: the treatment
session (date, daily output factor, pressure, temperature, fraction, the factors applied), the
day's setting per reference setting, and the corrected time or monitor units.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("treatment_session", "session_scale", "checked_time_s", "checked_monitor_units")


def upgrade() -> None:
    # Nullable: deliveries recorded before were checked against the reference values.
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("treatment_session", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("session_scale", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("checked_time_s", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("checked_monitor_units", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
