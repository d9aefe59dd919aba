"""coupon codes: generated or imported, claimed by members (issue 8)

Adds `coupon_codes`: one row per code, with the policy it stands for, its batch, and how many of
its uses are claimed (a guarded update keeps uses <= max_uses). An addition only.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 18:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

from perkflow.storage.tables import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coupon_codes",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.String(length=64), nullable=False),
        sa.Column("batch", sa.String(length=64), nullable=False),
        sa.Column("max_uses", sa.BigInteger(), nullable=False),
        sa.Column("uses", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_index(op.f("ix_coupon_codes_batch"), "coupon_codes", ["batch"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_coupon_codes_batch"), table_name="coupon_codes")
    op.drop_table("coupon_codes")
