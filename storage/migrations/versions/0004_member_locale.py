"""the language of a member's notifications (issue 6)

Adds `members.locale` (nullable: the scheme's first language when unset). An addition only.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 17:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("locale")
