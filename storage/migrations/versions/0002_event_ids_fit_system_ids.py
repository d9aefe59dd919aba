"""event ids fit the ids of system events

The runtime stores expiry and tier reviews under ids such as `expiry:<member id>:<instant>`, up to
29 characters longer than the member id (at most 200), so the columns that hold an event id are
widened from 200 to 260 characters. Widening only: nothing stored changes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 15:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = [
    ("events", "id"),
    ("ledger", "event_id"),
    ("lots", "source_event"),
    ("coupons", "source_event"),
    ("tier_history", "event_id"),
    ("outbox", "event_id"),
]


def upgrade() -> None:
    for table, column in COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column,
                existing_type=sa.String(length=200),
                type_=sa.String(length=260),
                existing_nullable=False,
            )


def downgrade() -> None:
    for table, column in reversed(COLUMNS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column,
                existing_type=sa.String(length=260),
                type_=sa.String(length=200),
                existing_nullable=False,
            )
