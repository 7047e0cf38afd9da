"""The private Apache Kafka broker: one KRaft node (broker and controller),
jars fetched from Maven Central with the project's pom, storage formatted
with Kafka's own StorageTool, started with ``java -cp 'lib/*' kafka.Kafka``."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import uuid
from importlib import resources
from pathlib import Path

from alertlab.core import secrets, settings
from alertlab.core.errors import ServiceError
from alertlab.core.services.process import ServiceState, private_dir, require, start, stop, wait_until

NAME = "kafka"
CLIENT_USER = "alertlab"  # the one SASL/PLAIN principal AlertLab's services use
JAVA_HINT = "install Java 17 or newer: apt-get install openjdk-17-jre-headless"
MVN_HINT = "install Maven: apt-get install maven"

LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = OUT
logger.kafka.name = kafka
logger.kafka.level = warn
logger.apache.name = org.apache.kafka
logger.apache.level = warn
"""


def _pom() -> Path:
    return Path(str(resources.files("alertlab.core") / "kafka" / "pom.xml"))


def _fetch_jars(lib: Path) -> None:
    """Copy the broker's jars into ``lib`` unless they are already there for this pom."""
    pom = _pom()
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    marker = lib / ".pom-sha256"
    if marker.exists() and marker.read_text() == digest:
        return
    mvn = require(settings.get("ALERTLAB_MVN"), MVN_HINT)
    print("fetching the Kafka jars with Maven (once; cached in the local Maven repository)...", file=sys.stderr)
    partial = lib.with_name("lib.partial")
    subprocess.run(["rm", "-rf", str(partial)], check=True)
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
         f"-DoutputDirectory={partial}", "-DincludeScope=runtime"],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
        raise ServiceError(NAME, "mvn could not fetch the Kafka jars: " + " | ".join(tail))
    (partial / ".pom-sha256").write_text(digest)
    subprocess.run(["rm", "-rf", str(lib)], check=True)
    partial.rename(lib)


def client_password() -> str:
    return secrets.get("kafka_client")


def _write_config(state: ServiceState, port: int, controller_port: int) -> Path:
    data_dir = state.dir / "data"
    admin_pw, client_pw = secrets.get("kafka_admin"), client_password()
    jaas = (f'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
            f'password="{admin_pw}" user_admin="{admin_pw}" user_{CLIENT_USER}="{client_pw}";')
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        # clients must log in (SASL/PLAIN): other local users, e.g. notebooks, cannot read or inject alerts
        "listeners": f"SASL_PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"SASL_PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
        "message.max.bytes": "10485760",
        "log.retention.hours": "168",
        # the cleaner only compacts the consumer offsets here: its 128 MB default took a quarter of the heap
        "log.cleaner.dedupe.buffer.size": "33554432",
    }
    path = state.dir / "server.properties"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the passwords
    with os.fdopen(fd, "w") as fh:
        fh.write("".join(f"{k}={v}\n" for k, v in props.items()))
    os.chmod(path, 0o600)
    state.save(sasl=True)
    (state.dir / "log4j2.properties").write_text(LOG4J2)
    return path


def _format(java: str, lib: Path, config: Path, state: ServiceState) -> None:
    if (state.dir / "data" / "meta.properties").exists():
        return
    cluster_id = state.load().get("cluster_id") or base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    state.save(cluster_id=cluster_id)
    result = subprocess.run(
        [java, f"-Dlog4j2.configurationFile={state.dir / 'log4j2.properties'}", "-cp", f"{lib}/*",
         "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(config)],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise ServiceError(NAME, "formatting the storage failed: " + (result.stderr or result.stdout).strip()[-400:])


def bootstrap() -> str:
    return f"127.0.0.1:{ServiceState(NAME).load().get('port')}"


def _answers(servers: str) -> bool:
    from confluent_kafka.admin import AdminClient

    conf = {"bootstrap.servers": servers, "log_level": 0, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "PLAIN", "sasl.username": CLIENT_USER, "sasl.password": client_password()}
    try:
        md = AdminClient(conf).list_topics(timeout=2)
        return bool(md.brokers)
    except Exception:
        return False


def up() -> dict:
    java = require(settings.get("ALERTLAB_JAVA"), JAVA_HINT)
    state = ServiceState(NAME)
    if not state.running():
        lib = state.dir / "lib"
        private_dir(state.dir)
        _fetch_jars(lib)
        port = state.port("port")
        controller_port = state.port("controller_port")
        config = _write_config(state, port, controller_port)
        _format(java, lib, config, state)
        heap = settings.get("ALERTLAB_KAFKA_HEAP")
        # Kafka's documented G1 settings. With 16 MB regions a produce request of a few 75 KB alerts is not a
        # "humongous" allocation (half a region or more, straight into the old generation): with 512 MB and
        # 1 MB regions, paced input kept G1's concurrent marking running, a third of the broker's CPU.
        argv = [java, f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", "-XX:G1HeapRegionSize=16M",
                "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={state.dir / 'log4j2.properties'}",
                "-cp", f"{lib}/*", "kafka.Kafka", str(config)]
        start(state, argv, env={**os.environ, "KAFKA_HEAP_OPTS": ""})
        wait_until(lambda: _answers(bootstrap()), state, "answer a metadata request")
    return {"pid": state.pid(), "bootstrap": bootstrap(), "username": CLIENT_USER, "password": client_password()}


def down() -> bool:
    return stop(ServiceState(NAME), timeout=60)


def status() -> dict:
    state = ServiceState(NAME)
    data = state.load()
    running = state.running()
    return {"service": NAME, "running": running, "pid": data.get("pid") if running else None,
            "port": data.get("port"), "answers": running and _answers(bootstrap())}
