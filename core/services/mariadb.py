"""The private MariaDB server: a data directory under $ALERTLAB_HOME/mariadb,
``mariadbd`` on its own unix socket and a free localhost port, and the
AlertLab databases and accounts.

Accounts (passwords generated into $ALERTLAB_HOME/secrets.json):
- ``root``: used only here, to create the others;
- ``alertlab_writer``: everything on the AlertLab databases and on scratch databases
  named ``alertlab_*`` (ingest, services, migrations, tests);
- ``alertlab_reader``: SELECT on the alert database only, for the SQL users type.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import quote_plus

import pymysql

from alertlab.core import secrets, settings
from alertlab.core.errors import ServiceError
from alertlab.core.services.process import ServiceState, private_dir, require, start, stop, wait_until

NAME = "mariadb"
WRITER = "alertlab_writer"
READER = "alertlab_reader"
INSTALL_HINT = "install MariaDB's server: apt-get install mariadb-server"


def _paths(state: ServiceState) -> dict[str, Path]:
    return {
        "datadir": state.dir / "data",
        "socket": state.dir / "mariadbd.sock",
        "pidfile": state.dir / "mariadbd.pid",
    }


def _is_root() -> bool:
    return os.geteuid() == 0


def _initialise(datadir: Path) -> None:
    install_db = require("mariadb-install-db", INSTALL_HINT)
    private_dir(datadir.parent)
    tmp = datadir.with_name("data.partial")
    subprocess.run(["rm", "-rf", str(tmp)], check=True)
    cmd = [install_db, "--no-defaults", f"--datadir={tmp}", "--auth-root-authentication-method=normal",
           "--skip-test-db", "--skip-name-resolve"]
    if _is_root():
        cmd.append("--user=root")
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise ServiceError(NAME, "mariadb-install-db failed: " + (result.stderr or result.stdout).strip()[-400:])
    tmp.rename(datadir)  # only a complete data directory gets the final name


def _connect_root(socket: Path, password: str | None):
    return pymysql.connect(unix_socket=str(socket), user="root", password=password or "",
                           connect_timeout=2, autocommit=True)


def _answers(socket: Path) -> bool:
    for password in (secrets.get("mariadb_root"), None):
        try:
            _connect_root(socket, password).close()
            return True
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] == 1045:  # access denied: it answers
                continue
            return False
    return False


def _bootstrap(socket: Path) -> None:
    """Root password, databases and the two accounts; safe to run on every start."""
    root_pw = secrets.get("mariadb_root")
    try:
        conn = _connect_root(socket, root_pw)
    except pymysql.err.OperationalError:
        conn = _connect_root(socket, None)  # first start: root has no password yet
    alerts_db = settings.get("ALERTLAB_ALERTS_DB")
    app_db = settings.get("ALERTLAB_APP_DB")
    with conn, conn.cursor() as cur:
        cur.execute("ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (root_pw,))
        for account, pw_name in ((WRITER, "mariadb_writer"), (READER, "mariadb_reader")):
            for host in ("localhost", "127.0.0.1"):
                cur.execute(f"CREATE USER IF NOT EXISTS '{account}'@'{host}' IDENTIFIED BY %s",
                            (secrets.get(pw_name),))
                cur.execute(f"ALTER USER '{account}'@'{host}' IDENTIFIED BY %s", (secrets.get(pw_name),))
        for db in (alerts_db, app_db, "jupyterhub"):
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            for host in ("localhost", "127.0.0.1"):
                cur.execute(f"GRANT ALL PRIVILEGES ON `{db}`.* TO '{WRITER}'@'{host}'")
        for host in ("localhost", "127.0.0.1"):
            cur.execute(f"GRANT SELECT, SHOW VIEW ON `{alerts_db}`.* TO '{READER}'@'{host}'")
            # scratch databases (tests, per-worker batch schemas) named alertlab_*
            cur.execute(f"GRANT ALL PRIVILEGES ON `alertlab\\_%`.* TO '{WRITER}'@'{host}'")
            # the reader may run many queries, but each account's footprint is bounded
            cur.execute(f"ALTER USER '{READER}'@'{host}' WITH MAX_USER_CONNECTIONS 100")
        cur.execute("FLUSH PRIVILEGES")


def url(account: str = WRITER) -> str:
    """SQLAlchemy URL of ``account`` on the private server (no database part)."""
    port = ServiceState(NAME).load().get("port")
    pw_name = "mariadb_writer" if account == WRITER else "mariadb_reader"
    return f"mysql+pymysql://{account}:{quote_plus(secrets.get(pw_name))}@127.0.0.1:{port}/?charset=utf8mb4"


def up() -> dict:
    """Start the server if it is not running, and make sure databases and accounts exist."""
    mariadbd = require(settings.get("ALERTLAB_MARIADBD"), INSTALL_HINT)
    state = ServiceState(NAME)
    paths = _paths(state)
    if not state.running():
        if not (paths["datadir"] / "mysql").is_dir():
            _initialise(paths["datadir"])
        port = state.port("port")
        argv = [
            mariadbd, "--no-defaults",
            f"--datadir={paths['datadir']}", f"--socket={paths['socket']}", f"--pid-file={paths['pidfile']}",
            f"--port={port}", "--bind-address=127.0.0.1", "--skip-name-resolve",
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
            "--innodb-buffer-pool-size=1G", "--innodb-flush-log-at-trx-commit=2", "--max-connections=500",
            # ingest writes ~10 MB of redo per 1,000 alerts: with a 256 MB log, paced bench runs reached 203 of
            # its 217 MB checkpoint limit, where InnoDB flushes pages synchronously and writes wait for it.
            # A 1 GB log and an SSD's I/O capacity let the page cleaner keep up in the background.
            "--innodb-log-file-size=1G", "--innodb-io-capacity=2000", "--innodb-io-capacity-max=4000",
            # cutouts make ingest write-heavy: a bigger log buffer, and no doublewrite for this private instance
            "--innodb-log-buffer-size=64M", "--innodb-doublewrite=0", "--max-allowed-packet=64M",
            "--log-error=" + str(settings.home() / "logs" / "mariadb.log"),
        ]
        if _is_root():
            argv.append("--user=root")
        private_dir(settings.home() / "logs")
        start(state, argv)
        wait_until(lambda: _answers(paths["socket"]), state, "answer on its socket")
    _bootstrap(paths["socket"])
    return {"pid": state.pid(), "port": state.load()["port"], "socket": str(paths["socket"]), "url": url()}


def down() -> bool:
    return stop(ServiceState(NAME), timeout=60)


def status() -> dict:
    state = ServiceState(NAME)
    data = state.load()
    running = state.running()
    return {"service": NAME, "running": running, "pid": data.get("pid") if running else None,
            "port": data.get("port"), "answers": running and _answers(_paths(state)["socket"])}
