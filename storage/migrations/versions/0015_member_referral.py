"""referrals (issue 8, item 7)

Adds `members.referral`: who invited the member (their referral code is the member id), when, and
whether the first purchase rewarded both sides, as JSON beside `goals`. Nullable so that existing
rows need no rewrite: no value reads as not invited. An addition only.

Revision ID: 0015
Revises: 0012
Create Date: 2026-11-23 21:40:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("referral", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("referral")
