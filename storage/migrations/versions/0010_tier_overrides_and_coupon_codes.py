"""tier overrides; a coupon's code names it within its member, not across the deployment

Adds `members.tier_override`: the tier staff set by hand (kind floor or fixed, tier, until, reason,
set_at, before), or null. `coupons.code` was unique. A coupon now carries the code it was claimed
with (a multi-use code is on as many coupons as it has uses) or the code a rule handed out with it
(derived from the coupon's id, so two members' coupons may share one by chance): the unique
constraint becomes a plain index. Additions only; nothing stored changes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 20:50:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tier_override", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True))
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_coupons_code"), type_="unique")
        batch_op.create_index(batch_op.f("ix_coupons_code"), ["code"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupons_code"))
        batch_op.create_unique_constraint(batch_op.f("uq_coupons_code"), ["code"])
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("tier_override")
