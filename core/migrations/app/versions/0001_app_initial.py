"""Application state: the first tables (later issues add theirs in new revisions).

Revision ID: app0001
Revises:
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

revision = "app0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A key-value table for small facts about the installation (schema notes, demo seeds).
    op.create_table(
        "app_meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated", sa.DateTime(6), nullable=False, server_default=sa.text("CURRENT_TIMESTAMP(6)")),
        mysql_charset="utf8mb4",
    )


def downgrade() -> None:
    op.drop_table("app_meta")
