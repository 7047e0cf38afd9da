"""Benchmark: N users log in at once and get their servers.

Each user, in its own thread, does what a browser does: opens the login page,
posts the form, follows the hub to its spawning server, and reloads its
JupyterLab URL (the hub's "spawn pending" page until the server is up; then,
after the OAuth dance with the hub, JupyterLab itself) until Lab is served.
Prints p50/p95 of login → server ready, and the peak resident memory of the
hub process (sampled every 50 ms with psutil).

Runs against a private MariaDB and hub in a temporary ALERTLAB_HOME (or the
database of ALERTLAB_DB_URL), on free ports; deletes the unix accounts it made.

    .venv/bin/python bench/hub.py [--users 20]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from html import unescape


def login_and_wait(url: str, name: str, password: str, timeout: float = 300) -> float:
    """Seconds from posting the login form to the user's server answering."""
    import httpx

    with httpx.Client(base_url=url, follow_redirects=True, timeout=120) as http:
        page = http.get("/hub/login")
        xsrf = unescape(re.search(r'name="_xsrf"\s+value="([^"]+)"', page.text).group(1))
        started = time.monotonic()
        r = http.post("/hub/login", data={"username": name, "password": password, "_xsrf": xsrf})
        if r.url.path == "/hub/login":
            raise RuntimeError(f"{name} could not log in")
        while time.monotonic() - started < timeout:
            r = http.get(f"/user/{name}/lab")
            if r.status_code == 200 and r.url.path == f"/user/{name}/lab":
                return time.monotonic() - started
            time.sleep(0.25)
    raise TimeoutError(f"{name}'s server was not ready within {timeout}s")


class PeakRSS(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process(pid)
        self.peak = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except Exception:
                return
            time.sleep(0.05)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="alertlab-bench-hub-")
    os.environ["ALERTLAB_HOME"] = home
    from alertlab.core.services import mariadb
    from alertlab.core.services.process import free_port
    from alertlab.hub import accounts, control, unixusers
    from alertlab.hub.hubapi import HubAPI

    tag = secrets.token_hex(2)
    os.environ.update({"ALERTLAB_HUB_PORT": str(free_port()), "ALERTLAB_HUB_DB": f"alertlab_benchhub_{tag}",
                       "ALERTLAB_HUB_ADMINS": f"benchadmin-{tag}"})
    os.environ.pop("ALERTLAB_API_PORT", None)
    started_db = not os.environ.get("ALERTLAB_DB_URL")
    names = [f"bench{i:02d}-{tag}" for i in range(args.users)]
    try:
        if started_db:
            os.environ["ALERTLAB_DB_URL"] = mariadb.up()["url"]
            os.environ["ALERTLAB_DB_READER_URL"] = mariadb.url(mariadb.READER)
        info = control.up()
        api = HubAPI()
        passwords = {n: secrets.token_urlsafe(12) for n in names}
        for n in names:
            accounts.ensure_user(n, passwords[n], api=api)
        sampler = PeakRSS(info["pid"])
        baseline = sampler.proc.memory_info().rss
        sampler.start()
        t0 = time.monotonic()
        with ThreadPoolExecutor(len(names)) as pool:
            times = list(pool.map(lambda n: login_and_wait(info["url"], n, passwords[n]), names))
        wall = time.monotonic() - t0
        sampler.done.set()
        sampler.join()
        print(f"{len(names)} users logging in at once on {os.cpu_count()} CPUs "
              f"(servers as per-user unix accounts: {os.geteuid() == 0})")
        print(f"login -> server ready: p50 {statistics.median(times):.1f} s, p95 {percentile(times, 95):.1f} s, "
              f"min {min(times):.1f} s, max {max(times):.1f} s; all ready after {wall:.1f} s")
        print(f"hub peak RSS {sampler.peak / 2**20:.0f} MiB (before the logins: {baseline / 2**20:.0f} MiB)")
        api.close()
    except BaseException:
        log = os.path.join(home, "logs", "hub.log")
        if os.path.exists(log):
            print("".join(open(log).readlines()[-40:]))
        raise
    finally:
        control.down()
        for n in names:
            unixusers.remove(n)
        if started_db:
            mariadb.down()
        else:
            import sqlalchemy as sa

            from alertlab.core import db

            engine = sa.create_engine(db.server_url())
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{os.environ['ALERTLAB_HUB_DB']}`")
            engine.dispose()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
