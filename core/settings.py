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


def _min_password(raw: str) -> int:
    value = int(raw)
    if value < 8:
        raise ValueError("must be at least 8")
    return value


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
        Setting("ALERTLAB_MARIADBD", "mariadbd", "The MariaDB server program to run for the private instance."),
        Setting("ALERTLAB_JAVA", "java", "The Java (17+) program that runs the Kafka broker."),
        Setting("ALERTLAB_MVN", "mvn", "The Maven program that fetches the Kafka jars from Maven Central."),
        Setting("ALERTLAB_KAFKA_HEAP", "512m", "Maximum Java heap of the private Kafka broker."),
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
        Setting("ALERTLAB_DEBUG", "false", "Show tracebacks instead of one-line errors (same as --debug).", _bool),
    ]
}


def get(env: str):
    """The current value of the setting named by its environment variable."""
    return SETTINGS[env].get()


def home() -> Path:
    return get("ALERTLAB_HOME")
