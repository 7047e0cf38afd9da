"""The API's application state: shares (who may see or edit a user's watchlist,
area, filter, and later notebooks, dashboards and schedules) and asynchronous
query jobs. docs/api.md describes every column.

Rate-limit state is not here: it lives in the memory of the one `alertlab`
service process (a restart forgets it, which only ever lets a little more
through). Annotator rights are hub groups (``annotator:<name>``), not a table.

Revision ID: app0003
Revises: app0002
Create Date: 2026-11-29
"""
from alembic import op

revision = "app0003"
down_revision = "app0002"
branch_labels = None
depends_on = None

TABLE = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"


def upgrade() -> None:
    op.execute(f"""
CREATE TABLE shares (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  resource_kind VARCHAR(32) NOT NULL,
  resource_id VARCHAR(64) NOT NULL,
  grantee_kind VARCHAR(8) NOT NULL,
  grantee VARCHAR(255) NOT NULL DEFAULT '',
  role VARCHAR(8) NOT NULL,
  expires DATETIME(6) NULL,
  created_by VARCHAR(255) NOT NULL,
  created DATETIME(6) NOT NULL,
  UNIQUE KEY ux_shares_grant (resource_kind, resource_id, grantee_kind, grantee),
  KEY ix_shares_grantee (grantee_kind, grantee, resource_kind),
  CONSTRAINT ck_shares_kind CHECK (grantee_kind IN ('user', 'group', 'all', 'link')),
  CONSTRAINT ck_shares_role CHECK (role IN ('viewer', 'editor'))
) {TABLE}""")
    op.execute(f"""
CREATE TABLE query_jobs (
  id CHAR(32) NOT NULL PRIMARY KEY,
  owner VARCHAR(255) NOT NULL,
  sql_text MEDIUMTEXT NOT NULL,
  checked_sql MEDIUMTEXT NOT NULL,
  row_limit BIGINT NOT NULL,
  row_offset BIGINT NOT NULL DEFAULT 0,
  max_seconds DOUBLE NOT NULL,
  status VARCHAR(16) NOT NULL DEFAULT 'queued',
  error TEXT NULL,
  nrows BIGINT NULL,
  truncated TINYINT(1) NULL,
  columns LONGTEXT NULL CHECK (columns IS NULL OR JSON_VALID(columns)),
  result_bytes BIGINT NULL,
  instance VARCHAR(64) NOT NULL,
  created DATETIME(6) NOT NULL,
  started DATETIME(6) NULL,
  finished DATETIME(6) NULL,
  KEY ix_jobs_owner (owner, created),
  KEY ix_jobs_status (status)
) {TABLE}""")


def downgrade() -> None:
    for table in ["query_jobs", "shares"]:
        op.execute(f"DROP TABLE IF EXISTS {table}")
