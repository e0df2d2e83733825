"""QA checks keep what was measured: the x-ray output check in the probe adapter (chamber
reading, air pressure and temperature, serials of source and chamber, the output factor) and the
isotropy check with the photodiode array (its serial), as a JSON ``details`` column.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("qa_output_checks", "qa_isotropy_checks")


def upgrade() -> None:
    # Nullable: checks recorded before carry their values in the other columns only.
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("details", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("details")
