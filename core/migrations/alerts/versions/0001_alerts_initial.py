"""The alert database: objects (denormalised light-curve features), detections,
non-detections, forced photometry, cutouts, annotations, watchlists, sky areas,
user filters and ingest rejects. docs/schema.md documents every column.

Revision ID: alerts0001
Revises:
Create Date: 2026-11-28
"""
from alembic import op

revision = "alerts0001"
down_revision = None
branch_labels = None
depends_on = None

BANDS = "ugrizy"
BAND_FEATURES = [
    ("ndet", "INT"), ("mean", "DOUBLE"), ("median", "DOUBLE"), ("std", "DOUBLE"), ("min", "DOUBLE"),
    ("max", "DOUBLE"), ("latest", "DOUBLE"), ("rate", "DOUBLE"), ("ema2", "DOUBLE"), ("ema8", "DOUBLE"),
    ("ema28", "DOUBLE"),
]
TABLE = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"


def upgrade() -> None:
    band_cols = ",\n".join(f"  `{b}_{name}` {kind} NULL" for b in BANDS for name, kind in BAND_FEATURES)
    op.execute(f"""
CREATE TABLE objects (
  objectId VARCHAR(32) NOT NULL PRIMARY KEY,
  survey VARCHAR(8) NOT NULL,
  ra DOUBLE NOT NULL,
  decl DOUBLE NOT NULL,
  healpix BIGINT NOT NULL,
  glat DOUBLE NULL,
  glon DOUBLE NULL,
  ndet INT NOT NULL,
  firstmjd DOUBLE NULL,
  lastmjd DOUBLE NULL,
  latest_mag DOUBLE NULL,
  latest_band CHAR(1) NULL,
  latest_detectionId BIGINT NULL,
  latest_reliability DOUBLE NULL,
  g_minus_r DOUBLE NULL,
  g_minus_r_dt DOUBLE NULL,
  nnondet INT NOT NULL DEFAULT 0,
  sgscore1 DOUBLE NULL,
  distpsnr1 DOUBLE NULL,
  ssdistnr DOUBLE NULL,
{band_cols},
  updated DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY ix_objects_healpix (healpix),
  KEY ix_objects_lastmjd (lastmjd),
  KEY ix_objects_firstmjd (firstmjd),
  KEY ix_objects_latest_mag (latest_mag),
  KEY ix_objects_ndet (ndet)
) {TABLE}""")
    op.execute(f"""
CREATE TABLE detections (
  detectionId BIGINT NOT NULL PRIMARY KEY,
  objectId VARCHAR(32) NOT NULL,
  survey VARCHAR(8) NOT NULL,
  mjd DOUBLE NOT NULL,
  band CHAR(1) NOT NULL,
  mag DOUBLE NULL,
  magerr DOUBLE NULL,
  flux DOUBLE NULL,
  fluxerr DOUBLE NULL,
  ra DOUBLE NULL,
  decl DOUBLE NULL,
  isdiffpos TINYINT(1) NULL,
  reliability DOUBLE NULL,
  has_alert TINYINT(1) NOT NULL DEFAULT 0,
  published TINYINT(1) NOT NULL DEFAULT 0,
  extra JSON NULL,
  ingested DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY ix_detections_object_mjd (objectId, mjd),
  KEY ix_detections_mjd (mjd)
) {TABLE}""")
    op.execute(f"""
CREATE TABLE nondetections (
  objectId VARCHAR(32) NOT NULL,
  mjd DOUBLE NOT NULL,
  band CHAR(1) NOT NULL,
  diffmaglim DOUBLE NULL,
  PRIMARY KEY (objectId, mjd, band)
) {TABLE}""")
    op.execute(f"""
CREATE TABLE forced_photometry (
  objectId VARCHAR(32) NOT NULL,
  mjd DOUBLE NOT NULL,
  band CHAR(1) NOT NULL,
  flux DOUBLE NULL,
  fluxerr DOUBLE NULL,
  extra JSON NULL,
  PRIMARY KEY (objectId, mjd, band)
) {TABLE}""")
    op.execute(f"""
CREATE TABLE cutouts (
  detectionId BIGINT NOT NULL,
  kind ENUM('science','template','difference') NOT NULL,
  fileName VARCHAR(255) NULL,
  pack VARCHAR(255) NULL,
  pack_offset BIGINT NULL,
  length INT NULL,
  data MEDIUMBLOB NULL,
  PRIMARY KEY (detectionId, kind)
) {TABLE}""")
    op.execute(f"""
CREATE TABLE annotations (
  objectId VARCHAR(32) NOT NULL,
  annotator VARCHAR(64) NOT NULL,
  classification VARCHAR(128) NOT NULL,
  explanation TEXT NULL,
  classdict JSON NULL,
  url VARCHAR(1024) NULL,
  version VARCHAR(64) NULL,
  updated DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (objectId, annotator),
  KEY ix_annotations_annotator (annotator, classification)
) {TABLE}""")
    op.execute(f"""
CREATE TABLE annotations_history (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  objectId VARCHAR(32) NOT NULL,
  annotator VARCHAR(64) NOT NULL,
  classification VARCHAR(128) NOT NULL,
  explanation TEXT NULL,
  classdict JSON NULL,
  url VARCHAR(1024) NULL,
  version VARCHAR(64) NULL,
  updated DATETIME(6) NOT NULL,
  UNIQUE KEY ux_annhist_object (objectId, annotator, updated)
) {TABLE}""")
    op.execute(f"""
CREATE TABLE watchlists (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  owner VARCHAR(255) NOT NULL,
  name VARCHAR(255) NOT NULL,
  description TEXT NULL,
  default_radius DOUBLE NOT NULL DEFAULT 2.0,
  active TINYINT(1) NOT NULL DEFAULT 1,
  ncones INT NOT NULL DEFAULT 0,
  created DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY ix_watchlists_owner (owner)
) {TABLE}""")
    op.execute(f"""
CREATE TABLE watchlist_cones (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  watchlist_id INT NOT NULL,
  ra DOUBLE NOT NULL,
  decl DOUBLE NOT NULL,
  radius DOUBLE NOT NULL,
  name VARCHAR(255) NULL,
  KEY ix_cones_watchlist (watchlist_id)
) {TABLE}""")
    op.execute(f"""
CREATE TABLE watchlist_hits (
  watchlist_id INT NOT NULL,
  cone_id BIGINT NOT NULL,
  objectId VARCHAR(32) NOT NULL,
  detectionId BIGINT NOT NULL,
  name VARCHAR(255) NULL,
  arcsec DOUBLE NOT NULL,
  mjd DOUBLE NOT NULL,
  created DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (watchlist_id, cone_id, detectionId),
  KEY ix_wlhits_object (objectId)
) {TABLE}""")
    op.execute(f"""
CREATE TABLE areas (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  owner VARCHAR(255) NOT NULL,
  name VARCHAR(255) NOT NULL,
  description TEXT NULL,
  moc LONGBLOB NOT NULL,
  sky_fraction DOUBLE NULL,
  active TINYINT(1) NOT NULL DEFAULT 1,
  created DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY ix_areas_owner (owner)
) {TABLE}""")
    op.execute(f"""
CREATE TABLE area_hits (
  area_id INT NOT NULL,
  objectId VARCHAR(32) NOT NULL,
  detectionId BIGINT NOT NULL,
  mjd DOUBLE NOT NULL,
  created DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (area_id, detectionId),
  KEY ix_areahits_object (objectId)
) {TABLE}""")
    op.execute(f"""
CREATE TABLE filters (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  owner VARCHAR(255) NOT NULL,
  name VARCHAR(255) NOT NULL,
  where_sql TEXT NOT NULL,
  active TINYINT(1) NOT NULL DEFAULT 1,
  last_error TEXT NULL,
  last_error_at DATETIME(6) NULL,
  nmatches BIGINT NOT NULL DEFAULT 0,
  created DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY ix_filters_owner (owner)
) {TABLE}""")
    op.execute(f"""
CREATE TABLE ingest_rejects (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  reason TEXT NOT NULL,
  topic VARCHAR(255) NULL,
  kafka_partition INT NULL,
  kafka_offset BIGINT NULL,
  source VARCHAR(1024) NULL,
  first_bytes VARBINARY(64) NULL,
  size INT NULL,
  created DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  UNIQUE KEY ux_rejects_position (topic, kafka_partition, kafka_offset)
) {TABLE}""")


def downgrade() -> None:
    for table in ["ingest_rejects", "filters", "area_hits", "areas", "watchlist_hits", "watchlist_cones",
                  "watchlists", "annotations_history", "annotations", "cutouts", "forced_photometry",
                  "nondetections", "detections", "objects"]:
        op.execute(f"DROP TABLE IF EXISTS {table}")
