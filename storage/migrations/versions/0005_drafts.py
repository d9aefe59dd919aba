"""drafts of the editor (issue 5)

Adds `drafts`: a scheme being edited in the browser, saved as it is typed (not yet valid), with a
revision that makes two people's saves of one draft detect each other. An addition only.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 18:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

from perkflow.storage.tables import BigId, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drafts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("version_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drafts")),
    )
    op.create_index(op.f("ix_drafts_status"), "drafts", ["status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_drafts_status"), table_name="drafts")
    op.drop_table("drafts")
