"""Every AlertLab setting, declared once: environment variable, default and help.

Settings are read lazily (each access reads the environment), so a test or a
sub-command can change ``os.environ`` and see the new value without reloading
modules. The README's settings table is checked against ``SETTINGS`` by
``tests/test_settings.py``: a setting that is not documented fails the suite.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class Setting:
    env: str
    default: str
    help: str
    parse: Callable[[str], object] = str

    def get(self):
        raw = os.environ.get(self.env)
        if raw is None or raw == "":
            raw = self.default
        try:
            return self.parse(raw)
        except ValueError as exc:  # one clear line, not a traceback
            from alertlab.core.errors import ConfigError

            raise ConfigError(f"{self.env}={raw!r} is not valid: {exc}") from None


def _path(raw: str) -> Path:
    return Path(raw).expanduser().resolve()


def _bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true/false")


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be a positive number")
    return value


def _share(raw: str) -> float:
    value = float(raw)
    if not 0 < value <= 1:
        raise ValueError("must be a share between 0 (excluded) and 1")
    return value


def _min_password(raw: str) -> int:
    value = int(raw)
    if value < 8:
        raise ValueError("must be at least 8")
    return value


def _choice(*allowed: str):
    def parse(raw: str) -> str:
        if raw not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return raw
    return parse


SETTINGS: dict[str, Setting] = {
    s.env: s
    for s in [
        Setting("ALERTLAB_HOME", "./.alertlab",
                "Where AlertLab keeps its state: MariaDB data, Kafka jars and logs, generated secrets, logs.",
                _path),
        Setting("ALERTLAB_DB_URL", "",
                "SQLAlchemy URL of the writer account (no database part). Empty: the private MariaDB "
                "started by `alertlab services up`, with the password generated in $ALERTLAB_HOME/secrets.json."),
        Setting("ALERTLAB_DB_READER_URL", "",
                "SQLAlchemy URL of the read-only account used for user SQL. Empty: derived like ALERTLAB_DB_URL."),
        Setting("ALERTLAB_ALERTS_DB", "alerts", "Name of the database holding alert data."),
        Setting("ALERTLAB_APP_DB", "alertlab",
                "Name of the database holding application state (schedules, runs, shares, ...)."),
        Setting("ALERTLAB_KAFKA", "",
                "Kafka bootstrap servers (host:port,...). Empty: the private broker started by `alertlab services up`."),
        Setting("ALERTLAB_KAFKA_USERNAME", "",
                "SASL/PLAIN user for Kafka. Empty: none, or the private broker's (from $ALERTLAB_HOME/secrets.json)."),
        Setting("ALERTLAB_KAFKA_PASSWORD", "", "SASL/PLAIN password for Kafka (with ALERTLAB_KAFKA_USERNAME)."),
        Setting("ALERTLAB_MARIADBD", "mariadbd", "The MariaDB server program to run for the private instance."),
        Setting("ALERTLAB_JAVA", "java", "The Java (17+) program that runs the Kafka broker."),
        Setting("ALERTLAB_MVN", "mvn", "The Maven program that fetches the Kafka jars from Maven Central."),
        Setting("ALERTLAB_KAFKA_HEAP", "1g", "Java heap of the private Kafka broker (as Kafka's own scripts)."),
        Setting("ALERTLAB_SERVICE_TIMEOUT", "120", "Seconds to wait for MariaDB or Kafka to answer after starting.",
                float),
        Setting("ALERTLAB_SCHEMA_REGISTRY", "",
                "URL of a Confluent-compatible schema registry for LSST wire-format messages. Empty: the schemas "
                "shipped in ingest/schemas (id = major*100 + minor)."),
        Setting("ALERTLAB_MATCHES_TOPIC", "alertlab.matches",
                "Kafka topic of match events (filter matches, watchlist and area hits, annotations)."),
        Setting("ALERTLAB_DEADLETTER_TOPIC", "alertlab.deadletter",
                "Kafka topic receiving messages the ingest could not read, with the reason in a header."),
        Setting("ALERTLAB_ANNOTATIONS_TOPIC", "annotations",
                "Kafka topic on which annotators push annotations (JSON); the ingest stores them."),
        Setting("ALERTLAB_INGEST_BATCH", "500", "Alerts per ingest batch (a batch is one database transaction).", int),
        Setting("ALERTLAB_INGEST_FLUSH_MS", "250",
                "A batch is written after this many milliseconds even when not full, so a lone alert is not kept waiting.",
                int),
        Setting("ALERTLAB_HUB_IP", "127.0.0.1",
                "Address the hub (its proxy) listens on; 0.0.0.0 for every interface."),
        Setting("ALERTLAB_HUB_PORT", "8000", "Port of the hub: http://ALERTLAB_HUB_IP:ALERTLAB_HUB_PORT/.", int),
        Setting("ALERTLAB_HUB_DB", "jupyterhub", "Name of the database holding JupyterHub's state (users, tokens, ...)."),
        Setting("ALERTLAB_HUB_ADMINS", "admin", "Comma-separated hub users who are administrators."),
        Setting("ALERTLAB_AUTHENTICATOR", "native",
                "How people log in: `native` (accounts with sign-up and admin approval) or `generic-oauth` "
                "(an institutional OAuth2/OIDC provider configured with OAuthenticator's OAUTH_* variables)."),
        Setting("ALERTLAB_OPEN_SIGNUP", "false", "Native accounts: sign-ups are approved at once (for demos).", _bool),
        Setting("ALERTLAB_MIN_PASSWORD_LENGTH", "8", "Native accounts: the shortest password accepted (at least 8).",
                _min_password),
        Setting("ALERTLAB_LOGIN_ATTEMPTS", "5", "Native accounts: failed logins in a row before the account is locked.",
                int),
        Setting("ALERTLAB_LOCKOUT_SECONDS", "600", "Native accounts: how long a locked account must wait.", int),
        Setting("ALERTLAB_OAUTH_SCOPES", "openid profile email", "generic-oauth: scopes asked of the provider."),
        Setting("ALERTLAB_OAUTH_ALLOWED_GROUPS", "",
                "generic-oauth: comma-separated provider groups allowed in; empty: every account of the provider."),
        Setting("ALERTLAB_IDLE_TIMEOUT", "3600",
                "Seconds without activity after which a user's server is stopped (0: never).", int),
        Setting("ALERTLAB_API_PORT", "",
                "Local port of the `alertlab` web service behind the hub. Empty: a free port, kept in $ALERTLAB_HOME/hub."),
        Setting("ALERTLAB_URL", "",
                "Client: URL of the `alertlab` service (http://HOST/services/alertlab/). Inside the hub it is set for you."),
        Setting("ALERTLAB_TOKEN", "",
                "Client: a hub API token (made on the hub's token page). Inside the hub, $JUPYTERHUB_API_TOKEN is used."),
        Setting("ALERTLAB_CUTOUT_STORE", "files",
                "Where alert stamps are kept: `files` (pack files in ALERTLAB_CUTOUT_DIR, indexed in the `cutouts` "
                "table) or `db` (BLOBs in the `cutouts` table).", _choice("files", "db")),
        Setting("ALERTLAB_CUTOUT_DIR", "",
                "Folder of the stamp pack files (shared storage when several hosts ingest). Empty: $ALERTLAB_HOME/cutouts."),
        Setting("ALERTLAB_DEBUG", "false", "Show tracebacks instead of one-line errors (same as --debug).", _bool),
        Setting("ALERTLAB_RUNS_TOPIC", "alertlab.runs",
                "Kafka topic of queued scheduler runs; workers take them as the consumer group <topic>.workers."),
        Setting("ALERTLAB_SCHEDULER_WORKERS", "2", "Notebook runs one `alertlab scheduler worker` executes at once.",
                int),
        Setting("ALERTLAB_RUN_MEMORY_MB", "4096",
                "Memory limit (address space, RLIMIT_AS) of each scheduled run's processes, in MB; a schedule "
                "may ask for less, never more.", int),
        Setting("ALERTLAB_SCHEDULER_GRACE", "600",
                "Seconds a scheduled fire time may be late (the scheduler was down) and still run; older ones are "
                "skipped, several missed ones run once.", float),
        Setting("ALERTLAB_SCHEDULER_MIN_INTERVAL", "60",
                "Shortest interval between a schedule's runs, in seconds; below 60 a six-field cron "
                "(seconds first) is accepted too.", float),
        Setting("ALERTLAB_SMTP_HOST", "", "SMTP server for scheduler e-mail notifications; empty: no e-mail."),
        Setting("ALERTLAB_SMTP_PORT", "25", "Port of the SMTP server.", int),
        Setting("ALERTLAB_SMTP_FROM", "alertlab@localhost", "Sender address of scheduler e-mail notifications."),
        Setting("ALERTLAB_WEBHOOK_PRIVATE", "false",
                "Allow scheduler webhooks to private, loopback and link-local addresses (off: only public hosts).",
                _bool),
        Setting("ALERTLAB_POWER_GROUP", "power-users",
                "API: hub group whose members are power users (larger row caps, rates and time limits); "
                "hub admins are power users too."),
        Setting("ALERTLAB_RATE_ANONYMOUS", "60",
                "API: requests per minute from one address without a valid token (then 429 with Retry-After).",
                _positive_int),
        Setting("ALERTLAB_RATE_USER", "600", "API: requests per minute of one user.", _positive_int),
        Setting("ALERTLAB_RATE_POWER", "3000", "API: requests per minute of one power user.", _positive_int),
        Setting("ALERTLAB_QUERY_ROWS_USER", "100000", "API: most rows one synchronous query returns to a user.",
                _positive_int),
        Setting("ALERTLAB_QUERY_ROWS_POWER", "1000000",
                "API: most rows one synchronous query returns to a power user.", _positive_int),
        Setting("ALERTLAB_QUERY_SECONDS", "60", "API: time limit of a synchronous query, in seconds.", _positive_float),
        Setting("ALERTLAB_QUERY_CONCURRENCY", "2",
                "API: synchronous queries one user may have running at once (more: 429).", _positive_int),
        Setting("ALERTLAB_QUERY_CONCURRENCY_POWER", "6",
                "API: synchronous queries one power user may have running at once.", _positive_int),
        Setting("ALERTLAB_JOB_ROWS_USER", "1000000", "API: most rows an asynchronous query stores for a user.",
                _positive_int),
        Setting("ALERTLAB_JOB_ROWS_POWER", "20000000",
                "API: most rows an asynchronous query stores for a power user.", _positive_int),
        Setting("ALERTLAB_JOB_SECONDS", "600", "API: time limit of an asynchronous query, in seconds.",
                _positive_float),
        Setting("ALERTLAB_JOB_SECONDS_POWER", "3600",
                "API: time limit of a power user's asynchronous query, in seconds.", _positive_float),
        Setting("ALERTLAB_JOBS_PER_USER", "4",
                "API: unfinished asynchronous queries one user may have at once (more: 429).", _positive_int),
        Setting("ALERTLAB_JOB_WORKERS", "2", "API: asynchronous queries the service runs at once (all users).",
                _positive_int),
        Setting("ALERTLAB_JOB_KEEP_DAYS", "7",
                "API: days an asynchronous query's result is kept (in $ALERTLAB_HOME/jobs) before it is deleted.",
                _positive_float),
        Setting("ALERTLAB_FILTER_MAX_NIGHT_SHARE", "0.1",
                "API: a filter is refused when its dry run matches more than this share of one night's objects.",
                _share),
        Setting("ALERTLAB_FILTER_DRYRUN_DAYS", "3",
                "API: days of data (before the latest object's lastmjd) a filter's dry run looks at by default.",
                _positive_float),
        Setting("ALERTLAB_FILTER_DRYRUN_SECONDS", "30", "API: time limit of a filter's dry run, in seconds.",
                _positive_float),
        Setting("ALERTLAB_GALLERY_MAX_MB", "20", "Gallery: the largest notebook one may publish, in MB.",
                _positive_int),
        Setting("ALERTLAB_LINK_DAYS", "7", "Sharing: days a new share link stays valid unless its maker says otherwise.",
                _positive_float),
        Setting("ALERTLAB_VOILA_USER", "alertlab-voila",
                "Dashboards: the unprivileged unix account the Voila server and dashboard kernels run as (made on "
                "first start when the hub runs as root)."),
        Setting("ALERTLAB_DASHBOARD_VIEWERS", "20",
                "Dashboards: kernels one dashboard may have at once (viewers with it open); more get 429. "
                "An entry may set a lower limit.", _positive_int),
        Setting("ALERTLAB_DASHBOARD_IDLE_SECONDS", "600",
                "Dashboards: a dashboard kernel idle this long is stopped (culled), even with its page open.",
                _positive_int),
        Setting("ALERTLAB_DASHBOARD_WARM_KERNELS", "10",
                "Dashboards: kernels kept started and waiting for viewers, so a dashboard opens without waiting "
                "for a kernel to boot (0: none; about 120 MB each).", int),
        Setting("ALERTLAB_DASHBOARD_TOKEN_SECONDS", "3600",
                "Dashboards: lifetime of the short-lived hub token a dashboard kernel gets for its viewer.",
                _positive_int),
    ]
}


def get(env: str):
    """The current value of the setting named by its environment variable."""
    return SETTINGS[env].get()


def home() -> Path:
    return get("ALERTLAB_HOME")
