"""purchases by period read from the index alone (issue 10)

Widens `ix_events_type_occurred_at` to (type, occurred_at, member_id, id), so retention and RFM
find each purchase's member and id without fetching the event row (whose body is large). The
index replaces the narrower one, so the event path still writes one entry per event for it, a
little wider (the member's key and the event id).

Revision ID: 0013
Revises: 0015
Create Date: 2026-11-23 22:30:00.000000
"""

from alembic import op

revision = "0013"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_events_type_occurred_at", table_name="events")
    op.create_index("ix_events_type_occurred_at_member_id_id", "events", ["type", "occurred_at", "member_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_type_occurred_at_member_id_id", table_name="events")
    op.create_index("ix_events_type_occurred_at", "events", ["type", "occurred_at"])
