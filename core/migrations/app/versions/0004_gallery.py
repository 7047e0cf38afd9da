"""The shared notebook gallery: entries, their versions (the notebook, its
cached HTML render and thumbnail), tags and stars. Who may see an entry (and
its dashboard) is the ``shares`` table of app0003 (resource_kind
``notebook``), including link shares (grantee_kind ``link``, the grantee is
the SHA-256 of the link's secret). docs/sharing.md describes every column.

Revision ID: app0004
Revises: app0003
Create Date: 2026-11-29
"""
from alembic import op

revision = "app0004"
down_revision = "app0003"
branch_labels = None
depends_on = None

TABLE = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"


def upgrade() -> None:
    op.execute(f"""
CREATE TABLE gallery_notebooks (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  slug VARCHAR(80) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  owner VARCHAR(255) NOT NULL,
  title VARCHAR(255) NOT NULL,
  description TEXT NOT NULL,
  search_text TEXT NOT NULL DEFAULT '',
  source_path VARCHAR(1024) NULL,
  latest_version INT NOT NULL DEFAULT 0,
  thumbnail_version INT NULL,
  stars INT NOT NULL DEFAULT 0,
  dashboard_limit INT NULL,
  created DATETIME(6) NOT NULL,
  updated DATETIME(6) NOT NULL,
  UNIQUE KEY ux_gallery_slug (slug),
  KEY ix_gallery_updated (updated),
  KEY ix_gallery_stars (stars, updated),
  KEY ix_gallery_owner (owner, updated),
  KEY ix_gallery_source (owner, source_path(190))
) {TABLE}""")
    op.execute(f"""
CREATE TABLE gallery_versions (
  notebook_id INT NOT NULL,
  version INT NOT NULL,
  title VARCHAR(255) NOT NULL,
  ipynb_gz LONGBLOB NOT NULL,
  html_gz LONGBLOB NULL,
  thumbnail MEDIUMBLOB NULL,
  ipynb_bytes INT NOT NULL,
  published_by VARCHAR(255) NOT NULL,
  created DATETIME(6) NOT NULL,
  PRIMARY KEY (notebook_id, version),
  CONSTRAINT fk_versions_notebook FOREIGN KEY (notebook_id) REFERENCES gallery_notebooks (id) ON DELETE CASCADE
) {TABLE}""")
    op.execute(f"""
CREATE TABLE gallery_tags (
  notebook_id INT NOT NULL,
  tag VARCHAR(64) NOT NULL,
  PRIMARY KEY (notebook_id, tag),
  KEY ix_tags_tag (tag, notebook_id),
  CONSTRAINT fk_tags_notebook FOREIGN KEY (notebook_id) REFERENCES gallery_notebooks (id) ON DELETE CASCADE
) {TABLE}""")
    op.execute(f"""
CREATE TABLE gallery_stars (
  notebook_id INT NOT NULL,
  user VARCHAR(255) NOT NULL,
  created DATETIME(6) NOT NULL,
  PRIMARY KEY (notebook_id, user),
  KEY ix_stars_user (user),
  CONSTRAINT fk_stars_notebook FOREIGN KEY (notebook_id) REFERENCES gallery_notebooks (id) ON DELETE CASCADE
) {TABLE}""")


def downgrade() -> None:
    for table in ["gallery_stars", "gallery_tags", "gallery_versions", "gallery_notebooks"]:
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DELETE FROM shares WHERE resource_kind = 'notebook'")
