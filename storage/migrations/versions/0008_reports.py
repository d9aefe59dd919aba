"""reports (issue 10)

Adds `campaign_members` (the group each member a campaign reached was assigned to, written with
the decision that assigned it) and the indexes the reports read: coupons by issue, events by
type and time, tier changes by time, members by joining, earnings by member. Additions only.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 18:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

from perkflow.storage.tables import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_coupons_issued_at", "coupons", ["issued_at"]),
    ("ix_events_type_occurred_at", "events", ["type", "occurred_at"]),
    ("ix_tier_history_at", "tier_history", ["at"]),
    ("ix_members_joined_at", "members", ["joined_at"]),
    ("ix_earnings_member_id", "earnings", ["member_id"]),
)


def upgrade() -> None:
    op.create_table(
        "campaign_members",
        sa.Column("campaign", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("grp", sa.String(length=16), nullable=False),
        sa.Column("first_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_campaign_members_member_id_members")),
        sa.PrimaryKeyConstraint("campaign", "member_id", name=op.f("pk_campaign_members")),
    )
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in _INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_table("campaign_members")
