"""Record chains: every audit entry becomes an event of its patient's (or the department's)
chain, naming the rows it changed with their digests and carrying an HMAC over itself and the
previous event of the chain. The rows and audit entries already stored get a genesis event per
chain, written by :func:`openiort.records.db.upgrade` right after this migration (it needs the
seal key, which a migration does not hold).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("recorded_at", "chain", "chain_seq", "prev_hmac", "rows", "key_id", "entry_hmac")


def upgrade() -> None:
    # Nullable: entries written before the chains carry none; the genesis event attests them.
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("chain", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("chain_seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prev_hmac", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("rows", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("entry_hmac", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint("uq_audit_log_chain_seq", ["chain", "chain_seq"])


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_constraint("uq_audit_log_chain_seq", type_="unique")
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
