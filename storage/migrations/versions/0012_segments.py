"""segments as audiences and the ledger's daily rollup (issue 10)

Adds `member_segments` (each member's RFM segment as the scheduler last computed it, with the local
day it was computed for), `segment_runs` (the days computed), `ledger_days` (the ledger summed per
closed local day, balance, kind, rule and channel) and `rollups` (how far it is built). Additions only.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 21:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

from perkflow.storage.tables import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_segments",
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("segment", sa.String(length=32), nullable=False),
        sa.Column("computed_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_member_segments_member_id_members")),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_segments")),
    )
    op.create_table(
        "segment_runs",
        sa.Column("computed_on", sa.Date(), nullable=False),
        sa.Column("computed_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("computed_on", name=op.f("pk_segment_runs")),
    )
    op.create_table(
        "ledger_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("balance", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
    )
    op.create_index("ix_ledger_days_day", "ledger_days", ["day"])
    op.create_table(
        "rollups",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("through", sa.Date(), nullable=False),
        sa.Column("ledger_id", sa.BigInteger(), nullable=False),
        sa.Column("built_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rollups")),
    )


def downgrade() -> None:
    op.drop_table("rollups")
    op.drop_index("ix_ledger_days_day", table_name="ledger_days")
    op.drop_table("ledger_days")
    op.drop_table("segment_runs")
    op.drop_table("member_segments")
