"""paying at the till: holds, and what a purchase paid with (issue 8 item 9)

Adds `holds` (points and stored value reserved at a till until a purchase captures them, a till
cancels them or they expire) and `earnings.paid` (what a purchase paid with, by balance and part,
so that a refund gives it back). Additions only; existing earnings paid with nothing (`[]`).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 21:00:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from perkflow.storage.tables import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("earnings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paid", JSON, nullable=False, server_default=sa.text("'[]'")))
    op.create_table(
        "holds",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("order_amount", sa.BigInteger(), nullable=False),
        sa.Column("amounts", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("store", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("captured_by", sa.String(length=260), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_holds_member_id_status"), "holds", ["member_id", "status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_holds_member_id_status"), table_name="holds")
    op.drop_table("holds")
    with op.batch_alter_table("earnings", schema=None) as batch_op:
        batch_op.drop_column("paid")
