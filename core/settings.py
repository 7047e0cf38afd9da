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
        Setting("ALERTLAB_DEBUG", "false", "Show tracebacks instead of one-line errors (same as --debug).", _bool),
    ]
}


def get(env: str):
    """The current value of the setting named by its environment variable."""
    return SETTINGS[env].get()


def home() -> Path:
    return get("ALERTLAB_HOME")
