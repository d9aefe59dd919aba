"""the daily segment run keeps each member's RFM scores (issue 10)

Adds to `member_segments` what the rfm report shows of a member: the R, F and M scores, the last
purchase (epoch seconds), purchases, spend, churn risk and usual interval. The daily run writes
them with the segment, so the report as of a day's first instant reads one row per member instead
of scoring every purchase of the year again. Nullable: rows of an earlier run have none until the
next run replaces them. Additions only.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-24 00:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

COLUMNS = (
    ("r", sa.SmallInteger()), ("f", sa.SmallInteger()), ("m", sa.SmallInteger()), ("last_at", sa.BigInteger()),
    ("purchases", sa.Integer()), ("spend", sa.BigInteger()), ("risk", sa.Float()), ("interval_days", sa.Float()),
)


def upgrade() -> None:
    with op.batch_alter_table("member_segments", schema=None) as batch_op:
        for name, kind in COLUMNS:
            batch_op.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("member_segments", schema=None) as batch_op:
        for name, _ in reversed(COLUMNS):
            batch_op.drop_column(name)
