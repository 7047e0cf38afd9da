"""The private services: up is idempotent, down leaves nothing running, a
second instance runs beside the first, and missing programs are one clear line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pymysql
import pytest
from sqlalchemy.engine import make_url

ALERTLAB = str(Path(sys.executable).with_name("alertlab"))


def _run(args, env, check=True):
    result = subprocess.run([ALERTLAB, *args], env=env, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"alertlab {' '.join(args)} failed: {result.stderr}")
    return result


def _exports(stdout: str) -> dict:
    out = {}
    for line in stdout.splitlines():
        assert line.startswith("export "), line
        name, value = line[len("export "):].split("=", 1)
        out[name] = value.strip("'")
    return out


def _processes(home: Path) -> list[str]:
    ps = subprocess.run(["ps", "-ww", "-eo", "stat=,args="], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if str(home) in line and not line.lstrip().startswith("Z")]


@pytest.mark.services
def test_second_instance_beside_the_first_then_down_leaves_nothing(services, tmp_path):
    env = {**os.environ, "ALERTLAB_HOME": str(tmp_path / "second")}
    env.pop("ALERTLAB_DB_URL", None)
    env.pop("ALERTLAB_KAFKA", None)
    env.pop("ALERTLAB_DB_READER_URL", None)
    first = _exports(_run(["services", "up"], env).stdout)
    try:
        # its own ports, different from the session's services
        assert first["ALERTLAB_DB_URL"] != services["db_url"]
        assert first["ALERTLAB_KAFKA"] != services["kafka"]
        # up again: same answers, nothing restarted
        pids_before = _run(["services", "status", "--json"], env).stdout
        again = _exports(_run(["services", "up"], env).stdout)
        assert again == first
        assert _run(["services", "status", "--json"], env).stdout == pids_before
        # the exported URL works as printed
        url = make_url(first["ALERTLAB_DB_URL"])
        conn = pymysql.connect(host=url.host, port=url.port, user=url.username, password=url.password)
        with conn, conn.cursor() as cur:
            cur.execute("SHOW DATABASES")
            names = {r[0] for r in cur.fetchall()}
        assert {"alerts", "alertlab"} <= names
        # db init from empty, twice
        env_db = {**env, "ALERTLAB_DB_URL": first["ALERTLAB_DB_URL"]}
        _run(["db", "init"], env_db)
        _run(["db", "init"], env_db)
        status = _run(["db", "status"], env_db).stdout
        assert "alerts: alerts" in status and "empty" not in status
        assert _processes(tmp_path / "second")
    finally:
        _run(["services", "down"], env)
    assert _processes(tmp_path / "second") == []
    status = _run(["services", "status"], env, check=False)
    assert status.returncode == 3
    assert "mariadb: stopped" in status.stdout and "kafka: stopped" in status.stdout


@pytest.mark.parametrize("missing,expected", [
    ("mariadbd", "mariadbd not found: install MariaDB's server: apt-get install mariadb-server"),
    ("java", "java not found: install Java 17 or newer"),
    ("mvn", "mvn not found: install Maven"),
])
def test_missing_prerequisite_is_one_clear_line(tmp_path, missing, expected):
    # a PATH with only the programs we want present
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for program in {"mariadbd": [], "java": [], "mvn": ["java"]}[missing]:
        os.symlink(shutil.which(program), bindir / program)
    env = {"PATH": str(bindir), "ALERTLAB_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)}
    only = "mariadb" if missing == "mariadbd" else "kafka"
    result = _run(["services", "up", "--only", only], env, check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 or lines[-1].startswith("alertlab: error:"), result.stderr
    assert expected in lines[-1]
    assert "Traceback" not in result.stderr


def test_a_service_state_read_while_it_is_written_is_never_half_a_file(tmp_path, monkeypatch):
    """`alertlab scheduler up` polls the state file that the service it started writes when ready."""
    import threading

    from alertlab.core.services.process import ServiceState

    monkeypatch.setenv("ALERTLAB_HOME", str(tmp_path))
    state, stop, errors = ServiceState("svc"), threading.Event(), []
    state.save(pid=1, ports={str(i): i for i in range(200)})

    def writer():
        n = 0
        while not stop.is_set():
            n += 1
            state.save(ready_pid=n)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(3000):
            try:
                assert state.load()["pid"] == 1
            except ValueError as exc:  # json.JSONDecodeError
                errors.append(exc)
    finally:
        stop.set()
        thread.join()
    assert errors == [] and state.load()["ready_pid"] > 0
