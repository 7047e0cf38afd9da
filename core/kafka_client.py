"""Configuration of every Kafka client AlertLab makes (producers, consumers,
admin clients), in one place: bootstrap servers and, when the broker requires
it, SASL/PLAIN credentials.

The private broker started by `alertlab services up` requires a password (so a
user's notebook on the same machine cannot read or inject alerts); its
credentials come from ALERTLAB_KAFKA_USERNAME / ALERTLAB_KAFKA_PASSWORD, or
from $ALERTLAB_HOME/secrets.json when those are unset and ALERTLAB_KAFKA is
the private broker."""

from __future__ import annotations

from alertlab.core import settings
from alertlab.core.errors import ConfigError


def bootstrap() -> str:
    servers = settings.get("ALERTLAB_KAFKA")
    if not servers:
        from alertlab.core.services import kafka

        state = kafka.ServiceState(kafka.NAME).load()
        if not state.get("port"):
            raise ConfigError("no Kafka: set ALERTLAB_KAFKA or run `alertlab services up` first")
        servers = kafka.bootstrap()
    return servers


def credentials(servers: str) -> tuple[str, str] | None:
    user = settings.get("ALERTLAB_KAFKA_USERNAME")
    if user:
        return user, settings.get("ALERTLAB_KAFKA_PASSWORD")
    from alertlab.core.services import kafka

    state = kafka.ServiceState(kafka.NAME).load()
    if state.get("sasl") and servers == kafka.bootstrap():
        return kafka.CLIENT_USER, kafka.client_password()
    return None


def client_config(**extra) -> dict:
    """librdkafka settings for a client of AlertLab's Kafka, plus ``extra``."""
    servers = bootstrap()
    conf = {"bootstrap.servers": servers}
    creds = credentials(servers)
    if creds:
        conf.update({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
                     "sasl.username": creds[0], "sasl.password": creds[1]})
    conf.update(extra)
    return conf
