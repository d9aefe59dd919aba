"""the erasure register (issue 9)

Adds `erasures`: one row per member whose personal data was erased, named by the member's
internal id and pseudonym only, so that an erasure can be applied again after a restore from an
older backup. An addition only.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 18:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

from perkflow.storage.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("pseudonym", sa.String(length=40), nullable=False),
        sa.Column("erased_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_erasures")),
    )


def downgrade() -> None:
    op.drop_table("erasures")
