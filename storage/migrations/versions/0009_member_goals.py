"""achievements (issue 8, item 6)

Adds `members.goals`: each member's progress towards the scheme's achievements (period, progress,
streak day, completions, the date of the badge), as JSON beside `counters` and `caps`. Nullable so
that existing rows need no rewrite: no value reads as no progress. An addition only.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 21:00:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("goals", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("goals")
