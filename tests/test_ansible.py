"""Deployment with Ansible (ansible/, docs/deploy.md).

- Every playbook passes `ansible-playbook --syntax-check` with both inventories, and
  `ansible-inventory --list` shows the host groups.
- The multi-host wiring: show-settings.yml renders, for each host of the example inventory,
  database URLs pointing at the db host and its replica and Kafka at the broker host (without
  connecting to any host). The multi-host roles themselves (systemd MariaDB and Kafka) are
  not run here: there are no other hosts and no systemd.
- A REAL single-host run on this machine (connection local) into a temporary ALERTLAB_HOME,
  install prefix and settings folder, reusing the checkout's venv: the private MariaDB and Kafka
  come up, the schema is migrated, the ingest consumes and stores alerts replayed to Kafka, the
  scheduler and its worker run; a second run reports changed=0; down.yml stops everything.
  The hub play is left out of that run (--skip-tags hub) and only syntax-checked: JupyterHub
  gives its managed `alertlab` service about 10 s to answer, which this shared 2-core machine
  does not always meet, and it adds about 40 s.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ANSIBLE = ROOT / "ansible"
BIN = ROOT / ".venv" / "bin"
INVENTORIES = {"single": ANSIBLE / "inventories" / "single" / "hosts.yml",
               "multi": ANSIBLE / "inventories" / "example-multi" / "hosts.yml"}
PLAYBOOKS = ["site.yml", "down.yml", "show-settings.yml"]
GROUPS = ["alertlab_db", "alertlab_kafka", "alertlab_ingest", "alertlab_hub", "alertlab_scheduler", "alertlab_workers"]
RUN_TIMEOUT = 600  # one playbook run; the real first run takes about 1.5 minutes here
VAULT_EXAMPLE = INVENTORIES["multi"].parent / "group_vars" / "all" / "vault.yml.example"


def _env() -> dict:
    """The environment of the Ansible commands: no inherited ALERTLAB_* (another test's services)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTLAB_")}
    env.update(ANSIBLE_CONFIG=str(ANSIBLE / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_STDOUT_CALLBACK="default", PATH=f"{BIN}:{env.get('PATH', '')}")
    return env


def ansible(tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / tool), *args], cwd=ANSIBLE, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counts per host: {'localhost': {'ok': 30, 'changed': 0, ...}}."""
    rows = {}
    for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M):
        rows[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
    return rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- static checks -------------------------------------------------------------------------------

@pytest.mark.parametrize("inventory", sorted(INVENTORIES))
def test_playbooks_syntax(inventory):
    result = ansible("ansible-playbook", "-i", str(INVENTORIES[inventory]), "--syntax-check", *PLAYBOOKS)
    assert result.returncode == 0, result.stdout + result.stderr
    for playbook in PLAYBOOKS:
        assert f"playbook: {playbook}" in result.stdout


def _inventory(name: str) -> dict:
    result = ansible("ansible-inventory", "-i", str(INVENTORIES[name]), "--list")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_single_inventory_puts_every_group_on_this_machine():
    inv = _inventory("single")
    for group in GROUPS:
        assert inv[group]["hosts"] == ["localhost"], group
    host = inv["_meta"]["hostvars"]["localhost"]
    assert host["ansible_connection"] == "local"
    assert host["alertlab_mode"] == "single"


def test_example_multi_inventory_spreads_the_groups():
    inv = _inventory("multi")
    hosts = {group: inv[group]["hosts"] for group in GROUPS + ["alertlab_db_replicas"]}
    assert hosts["alertlab_db"] == ["db-1.example.org"]
    assert hosts["alertlab_db_replicas"] == ["db-2.example.org"]
    assert hosts["alertlab_kafka"] == ["kafka-1.example.org"]
    assert sorted(hosts["alertlab_ingest"]) == ["ingest-1.example.org", "ingest-2.example.org"]
    assert len(hosts["alertlab_workers"]) == 2


def _settings_per_host(inventory: Path, *extra: str) -> tuple[dict[str, dict], str]:
    result = ansible("ansible-playbook", "-i", str(inventory), "show-settings.yml",
                     "-e", f"@{VAULT_EXAMPLE}", "-e", "ansible_connection=local", *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    per_host = {}
    for quoted in re.findall(r'"msg": ("ALERTLAB_SETTINGS .*")', result.stdout):
        _, host, payload = json.loads(quoted).split(" ", 2)
        per_host[host] = json.loads(payload)
    return per_host, result.stdout


def test_multi_host_settings_point_at_the_db_replica_and_broker():
    per_host, output = _settings_per_host(INVENTORIES["multi"])
    assert set(per_host) >= {"db-1.example.org", "ingest-1.example.org", "ingest-2.example.org",
                             "hub-1.example.org", "worker-1.example.org"}
    for host, env in per_host.items():
        assert "@db-1.example.org:3306/" in env["ALERTLAB_DB_URL"], host
        assert env["ALERTLAB_DB_URL"].startswith("mysql+pymysql://alertlab_writer:***@")
        assert "alertlab_reader:***@db-2.example.org:3306/" in env["ALERTLAB_DB_READER_URL"], host
        assert env["ALERTLAB_KAFKA"] == "kafka-1.example.org:9092"
        assert env["ALERTLAB_KAFKA_USERNAME"] == "alertlab"
        assert env["ALERTLAB_HUB_IP"] == "0.0.0.0"
        assert env["ALERTLAB_CUTOUT_DIR"] == "/srv/alertlab-cutouts"
    assert "change-me" not in output  # passwords are masked


def test_multi_host_addresses_and_no_replica(tmp_path):
    """Hosts may name an address; without replicas the read-only account uses the primary."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  vars: {alertlab_mode: multi}\n  children:\n"
        "    alertlab_db: {hosts: {db: {alertlab_address: 10.1.0.10}}}\n"
        "    alertlab_kafka: {hosts: {k1: {alertlab_address: 10.1.0.20}}}\n"
        "    alertlab_ingest: {hosts: {i1: {}}}\n    alertlab_hub: {hosts: {h1: {}}}\n"
        "    alertlab_scheduler: {hosts: {h1: {}}}\n    alertlab_workers: {hosts: {h1: {}}}\n")
    secrets = tmp_path / "secrets.yml"
    secrets.write_text("alertlab_db_writer_password: 'w/p@ss'\nalertlab_db_reader_password: r\n"
                       "alertlab_kafka_password: k\nalertlab_kafka_admin_password: a\n")
    per_host, _ = _settings_per_host(inventory, "-e", f"@{secrets}", "-e", "alertlab_kafka_port=9094")
    env = per_host["i1"]
    assert "@10.1.0.10:3306/" in env["ALERTLAB_DB_URL"]
    assert "@10.1.0.10:3306/" in env["ALERTLAB_DB_READER_URL"]
    assert env["ALERTLAB_KAFKA"] == "10.1.0.20:9094"


def test_single_mode_refuses_an_inventory_of_several_hosts(tmp_path):
    inventory = tmp_path / "hosts.yml"
    groups = {group: "{hosts: {one: {}}}" for group in GROUPS}
    groups["alertlab_workers"] = "{hosts: {one: {}, two: {}}}"
    inventory.write_text("all:\n  vars: {alertlab_mode: single, ansible_connection: local}\n  children:\n"
                         + "".join(f"    {group}: {hosts}\n" for group, hosts in groups.items()))
    home = tmp_path / "home"
    result = ansible("ansible-playbook", "-i", str(inventory), "site.yml",
                     "-e", json.dumps({"alertlab_home": str(home), "alertlab_source": "path",
                                       "alertlab_src": str(ROOT)}))
    assert result.returncode != 0
    assert "puts every group on one host" in result.stdout
    assert not home.exists()  # it stopped before touching the host


def test_common_role_clones_the_checkout_once(tmp_path):
    """alertlab_source=git clones alertlab_repo (here this repository) and makes the helpers; the
    venv step is left out (alertlab_venv_managed=false: installing the lock takes far too long here)."""
    src = tmp_path / "prefix" / "src"
    variables = {"alertlab_source": "git", "alertlab_repo": str(ROOT), "alertlab_version": "HEAD",
                 "alertlab_src": str(src), "alertlab_prefix": str(tmp_path / "prefix"),
                 "alertlab_home": str(tmp_path / "home"), "alertlab_config_dir": str(tmp_path / "etc"),
                 "alertlab_venv": str(ROOT / ".venv"), "alertlab_venv_managed": False}
    args = ("-i", str(INVENTORIES["single"]), "site.yml", "--tags", "common", "-e", json.dumps(variables))
    first = ansible("ansible-playbook", *args, timeout=RUN_TIMEOUT)
    assert first.returncode == 0, first.stdout[-4000:]
    assert (src / "requirements.txt").is_file() and (src / "core" / "settings.py").is_file()
    assert os.access(tmp_path / "prefix" / "libexec" / "alertlab-env", os.X_OK)
    assert stat.S_IMODE((tmp_path / "home").stat().st_mode) == 0o700
    second = ansible("ansible-playbook", *args, timeout=RUN_TIMEOUT)
    assert second.returncode == 0, second.stdout[-4000:]
    assert recap(second.stdout)["localhost"]["changed"] == 0, second.stdout[-4000:]


# ---- a real single-host deployment ---------------------------------------------------------------

def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, raw = line.partition("=")
            values[name] = shlex.split(raw)[0] if raw else ""
    return values


def _pids(home: Path) -> dict[str, int]:
    """Live processes recorded in the temporary home's state files."""
    from alertlab.core.services.process import pid_alive

    alive = {}
    for state in list(home.glob("*/state.json")) + list(home.glob("hub/proxy.json")):
        pid = json.loads(state.read_text()).get("pid")
        if pid and pid_alive(pid):
            alive[str(state.relative_to(home))] = pid
    return alive


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """site.yml run twice against this machine into temporary folders; down.yml afterwards."""
    base = tmp_path_factory.mktemp("ansible-deploy")
    home, prefix, etc = base / "home", base / "prefix", base / "etc"
    variables = {
        "alertlab_home": str(home), "alertlab_prefix": str(prefix), "alertlab_config_dir": str(etc),
        "alertlab_wrapper": str(prefix / "alertlab"),
        # the checkout and its venv as they are: a new venv from requirements.txt takes far longer
        "alertlab_source": "path", "alertlab_src": str(ROOT), "alertlab_venv": str(ROOT / ".venv"),
        "alertlab_venv_managed": False,
        "alertlab_settings": {"ALERTLAB_HUB_PORT": str(free_port()), "ALERTLAB_KAFKA_HEAP": "384m"},
        "alertlab_ingest_group": "alertlab-ingest-ansible-test",
    }
    varfile = base / "vars.json"
    varfile.write_text(json.dumps(variables))
    args = ("-i", str(INVENTORIES["single"]), "site.yml", "-e", f"@{varfile}", "--skip-tags", "hub")
    info = {"home": home, "prefix": prefix, "etc": etc, "wrapper": prefix / "alertlab", "varfile": varfile}
    try:
        first = ansible("ansible-playbook", *args, timeout=RUN_TIMEOUT)
        assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
        info["first"] = first.stdout
        second = ansible("ansible-playbook", *args, timeout=RUN_TIMEOUT)
        assert second.returncode == 0, second.stdout[-6000:] + second.stderr[-3000:]
        info["second"] = second.stdout
        yield info
    finally:
        ansible("ansible-playbook", "-i", str(INVENTORIES["single"]), "down.yml", "-e", f"@{varfile}",
                timeout=300)
        if _pids(home):  # belt and braces: nothing may be left running
            env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTLAB_")}
            subprocess.run([str(BIN / "alertlab"), "demo", "--down"], env={**env, "ALERTLAB_HOME": str(home)},
                           capture_output=True, timeout=300)


def test_first_run_changes_and_second_run_changes_nothing(deployed):
    first, second = recap(deployed["first"]), recap(deployed["second"])
    assert first["localhost"]["changed"] > 0 and first["localhost"]["failed"] == 0
    assert second["localhost"]["changed"] == 0, deployed["second"][-4000:]
    assert second["localhost"]["failed"] == 0


def test_settings_file_is_private_and_wires_the_services(deployed):
    path = deployed["etc"] / "env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    env = _read_env_file(path)
    assert env["ALERTLAB_HOME"] == str(deployed["home"])
    assert env["ALERTLAB_DB_URL"].startswith("mysql+pymysql://alertlab_writer:")
    assert env["ALERTLAB_KAFKA"].startswith("127.0.0.1:")
    assert env["ALERTLAB_KAFKA_USERNAME"] == "alertlab" and env["ALERTLAB_KAFKA_PASSWORD"]
    assert env["ALERTLAB_KAFKA_HEAP"] == "384m"


def test_mariadb_answers_with_the_schema_at_head(deployed):
    import sqlalchemy as sa

    env = _read_env_file(deployed["etc"] / "env")
    engine = sa.create_engine(env["ALERTLAB_DB_URL"].replace("/?", "/alerts?"))
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT COUNT(*) FROM objects").scalar() >= 0
    finally:
        engine.dispose()
    status = subprocess.run([str(deployed["wrapper"]), "db", "status"], capture_output=True, text=True,
                            env=_env(), timeout=120)
    assert status.returncode == 0, status.stdout + status.stderr  # both databases at head


def test_kafka_answers_metadata_only_with_the_sasl_credentials(deployed):
    from confluent_kafka.admin import AdminClient

    env = _read_env_file(deployed["etc"] / "env")
    conf = {"bootstrap.servers": env["ALERTLAB_KAFKA"], "log_level": 0}
    sasl = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
            "sasl.username": env["ALERTLAB_KAFKA_USERNAME"], "sasl.password": env["ALERTLAB_KAFKA_PASSWORD"]}
    metadata = AdminClient({**conf, **sasl}).list_topics(timeout=20)
    assert metadata.brokers
    with pytest.raises(Exception):
        AdminClient({**conf, **sasl, "sasl.password": "wrong"}).list_topics(timeout=3)


def test_ingest_stores_alerts_replayed_to_kafka(deployed):
    import fastavro
    import sqlalchemy as sa

    files = sorted((ROOT / "ingest" / "samples" / "ztf").glob("*.avro"))[:3]
    object_ids = set()
    for path in files:
        with open(path, "rb") as fh:
            object_ids.update(record["objectId"] for record in fastavro.reader(fh))
    replay = subprocess.run([str(deployed["wrapper"]), "replay", "--quiet", "--topic", "ztf",
                             "--files", *map(str, files)], capture_output=True, text=True, env=_env(), timeout=120)
    assert replay.returncode == 0, replay.stderr
    env = _read_env_file(deployed["etc"] / "env")
    engine = sa.create_engine(env["ALERTLAB_DB_URL"].replace("/?", "/alerts?"))
    found: set[str] = set()
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and found != object_ids:
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT objectId FROM objects WHERE objectId IN :ids")
                                    .bindparams(sa.bindparam("ids", expanding=True)), {"ids": sorted(object_ids)})
                found = {r[0] for r in rows}
            time.sleep(1)
    finally:
        engine.dispose()
    assert found == object_ids


def test_scheduler_and_worker_run(deployed):
    status = subprocess.run([str(deployed["wrapper"]), "scheduler", "status", "--json"], capture_output=True,
                            text=True, env=_env(), timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert {row["service"] for row in json.loads(status.stdout) if row["running"]} == {"scheduler", "scheduler-worker"}


def test_down_stops_everything(deployed):
    """Runs last: down.yml leaves no process of the deployment behind."""
    assert {"mariadb/state.json", "kafka/state.json", "ingest/state.json"} <= set(_pids(deployed["home"]))
    result = ansible("ansible-playbook", "-i", str(INVENTORIES["single"]), "down.yml",
                     "-e", f"@{deployed['varfile']}", timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert _pids(deployed["home"]) == {}
