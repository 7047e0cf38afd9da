"""The distribution maps every code folder to `alertlab.<folder>`, and the CLI lists its commands."""

import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import ROOT


def test_every_package_folder_is_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for top, package in config["package-dir"].items():
        for init in (ROOT / package).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / package)
            found.add(".".join([top, *rel.parts]) if rel.parts else top)
    assert found == listed


def test_cli_help_lists_subcommands_each_with_help():
    alertlab = str(Path(sys.executable).with_name("alertlab"))
    out = subprocess.run([alertlab, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("services", "db", "demo", "settings"):
        assert command in out
        sub = subprocess.run([alertlab, command, "--help"], capture_output=True, text=True)
        assert sub.returncode == 0 and "usage: alertlab " + command in sub.stdout


def test_bad_setting_is_one_line_not_a_traceback(tmp_path):
    alertlab = str(Path(sys.executable).with_name("alertlab"))
    env = {"PATH": "/usr/bin:/bin", "ALERTLAB_HOME": str(tmp_path), "ALERTLAB_SERVICE_TIMEOUT": "x",
           "ALERTLAB_DB_URL": "sqlite:///x.db"}
    r = subprocess.run([alertlab, "db", "status"], capture_output=True, text=True, env=env)
    assert r.returncode == 1
    assert r.stderr.strip() == "alertlab: error: ALERTLAB_DB_URL must be a MariaDB/MySQL URL, not sqlite"
