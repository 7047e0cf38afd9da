"""The scheduler: schedules, the run ledger and its outputs, alert-trigger
bookkeeping (events seen, objects already run, "never again" marks) and
in-app notifications. docs/scheduler.md describes every column.

Times are UTC (DATETIME(6) without a zone). JSON columns are LONGTEXT with a
JSON_VALID check, readable with JSON_EXTRACT.

Revision ID: app0002
Revises: app0001
Create Date: 2026-11-28
"""
from alembic import op

revision = "app0002"
down_revision = "app0001"
branch_labels = None
depends_on = None

TABLE = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"


def upgrade() -> None:
    op.execute(f"""
CREATE TABLE schedules (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  owner VARCHAR(255) NOT NULL,
  name VARCHAR(255) NOT NULL,
  notebook VARCHAR(1024) NOT NULL,
  parameters LONGTEXT NOT NULL DEFAULT '{{}}' CHECK (JSON_VALID(parameters)),
  kernel VARCHAR(64) NOT NULL,
  trigger_kind VARCHAR(16) NOT NULL,
  cron VARCHAR(255) NULL,
  timezone VARCHAR(64) NOT NULL DEFAULT 'UTC',
  interval_seconds DOUBLE NULL,
  alert_kind VARCHAR(16) NULL,
  alert_id VARCHAR(255) NULL,
  window_seconds DOUBLE NOT NULL DEFAULT 0,
  max_runs_per_hour INT NOT NULL DEFAULT 10,
  repeat_policy VARCHAR(8) NOT NULL DEFAULT 'every',
  repeat_days DOUBLE NULL,
  timeout_seconds INT NOT NULL DEFAULT 3600,
  retries INT NOT NULL DEFAULT 0,
  memory_mb INT NULL,
  enabled TINYINT(1) NOT NULL DEFAULT 1,
  notify_on VARCHAR(64) NOT NULL DEFAULT 'failure',
  notify_email TEXT NULL,
  notify_webhook VARCHAR(2048) NULL,
  version INT NOT NULL DEFAULT 1,
  created DATETIME(6) NOT NULL,
  updated DATETIME(6) NOT NULL,
  KEY ix_schedules_owner (owner),
  KEY ix_schedules_alert (alert_kind, alert_id)
) {TABLE}""")
    op.execute(f"""
CREATE TABLE runs (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  schedule_id INT NOT NULL,
  owner VARCHAR(255) NOT NULL,
  reason VARCHAR(16) NOT NULL,
  fire_time DATETIME(6) NOT NULL,
  parameters LONGTEXT NOT NULL DEFAULT '{{}}' CHECK (JSON_VALID(parameters)),
  notebook VARCHAR(1024) NOT NULL,
  kernel VARCHAR(64) NOT NULL,
  status VARCHAR(16) NOT NULL DEFAULT 'queued',
  attempt INT NOT NULL DEFAULT 1,
  max_attempts INT NOT NULL DEFAULT 1,
  queued DATETIME(6) NOT NULL,
  started DATETIME(6) NULL,
  ended DATETIME(6) NULL,
  heartbeat DATETIME(6) NULL,
  worker VARCHAR(255) NULL,
  pid INT NULL,
  cancel_requested TINYINT(1) NOT NULL DEFAULT 0,
  error TEXT NULL,
  note TEXT NULL,
  UNIQUE KEY ux_runs_fire (schedule_id, fire_time),
  KEY ix_runs_owner (owner, queued),
  KEY ix_runs_status (status),
  KEY ix_runs_schedule (schedule_id, queued),
  CONSTRAINT fk_runs_schedule FOREIGN KEY (schedule_id) REFERENCES schedules (id) ON DELETE CASCADE
) {TABLE}""")
    op.execute(f"""
CREATE TABLE run_outputs (
  run_id BIGINT NOT NULL PRIMARY KEY,
  ipynb_gz LONGBLOB NULL,
  html_gz LONGBLOB NULL,
  ipynb_bytes BIGINT NULL,
  html_bytes BIGINT NULL,
  created DATETIME(6) NOT NULL,
  CONSTRAINT fk_outputs_run FOREIGN KEY (run_id) REFERENCES runs (id) ON DELETE CASCADE
) {TABLE}""")
    op.execute(f"""
CREATE TABLE schedule_events (
  schedule_id INT NOT NULL,
  event_key CHAR(40) NOT NULL,
  objectId VARCHAR(64) NOT NULL,
  detectionId BIGINT NULL,
  event LONGTEXT NOT NULL CHECK (JSON_VALID(event)),
  status VARCHAR(16) NOT NULL DEFAULT 'pending',
  run_id BIGINT NULL,
  created DATETIME(6) NOT NULL,
  decided DATETIME(6) NULL,
  PRIMARY KEY (schedule_id, event_key),
  KEY ix_events_status (status, schedule_id),
  KEY ix_events_created (created),
  CONSTRAINT fk_events_schedule FOREIGN KEY (schedule_id) REFERENCES schedules (id) ON DELETE CASCADE
) {TABLE}""")
    op.execute(f"""
CREATE TABLE schedule_objects (
  schedule_id INT NOT NULL,
  objectId VARCHAR(64) NOT NULL,
  last_run DATETIME(6) NOT NULL,
  runs INT NOT NULL DEFAULT 1,
  PRIMARY KEY (schedule_id, objectId),
  CONSTRAINT fk_objects_schedule FOREIGN KEY (schedule_id) REFERENCES schedules (id) ON DELETE CASCADE
) {TABLE}""")
    op.execute(f"""
CREATE TABLE never_again (
  owner VARCHAR(255) NOT NULL,
  source_kind VARCHAR(16) NOT NULL,
  source_id VARCHAR(255) NOT NULL,
  objectId VARCHAR(64) NOT NULL,
  note TEXT NULL,
  created DATETIME(6) NOT NULL,
  PRIMARY KEY (owner, source_kind, source_id, objectId)
) {TABLE}""")
    op.execute(f"""
CREATE TABLE notifications (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  owner VARCHAR(255) NOT NULL,
  schedule_id INT NULL,
  run_id BIGINT NULL,
  kind VARCHAR(16) NOT NULL,
  title VARCHAR(512) NOT NULL,
  body TEXT NOT NULL,
  delivery LONGTEXT NOT NULL DEFAULT '{{}}' CHECK (JSON_VALID(delivery)),
  created DATETIME(6) NOT NULL,
  read_at DATETIME(6) NULL,
  KEY ix_notifications_owner (owner, created),
  CONSTRAINT fk_notifications_schedule FOREIGN KEY (schedule_id) REFERENCES schedules (id) ON DELETE CASCADE
) {TABLE}""")


def downgrade() -> None:
    for table in ["notifications", "never_again", "schedule_objects", "schedule_events", "run_outputs", "runs",
                  "schedules"]:
        op.execute(f"DROP TABLE IF EXISTS {table}")
