"""Benchmark: the gallery page over 10,000 entries, and a dashboard's first render with 10 viewers at once.

1. 10,000 gallery entries (written straight into the database: a third public,
   a third shared with the viewers' group, a third private to other people;
   tags, stars) and the gallery page (server-rendered HTML, through the hub's
   proxy, as a logged-in group member) timed sequentially: the first page,
   a text search, a tag, a group filter, sort by stars, a deep page.
2. The example "Brightness explorer" published for the group, then N viewers
   open its dashboard at the same moment: seconds from the request to the
   whole rendered page (Voila has run the notebook with that viewer's token).

Targets (issue 7): gallery page p50 <= 200 ms; dashboard first render p50 <= 3 s
with 10 viewers at once. Runs against its own MariaDB and hub in a temporary
ALERTLAB_HOME, on free ports (an ALERTLAB_DB_URL in the environment is ignored:
the hub's services need that instance's reader account too).

    .venv/bin/python bench/gallery.py [--entries 10000] [--viewers 10] [--warm 10]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

WORDS = ("supernova light curve fast riser tidal disruption kilonova microlensing variable star quasar "
         "flare blazar nova periodic eclipsing binary asteroid comet transient host galaxy redshift").split()
TAGS = ("ztf", "lsst", "sn", "tde", "agn", "yso", "cv", "asteroid", "classifier", "tutorial", "dashboard")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def fill_gallery(n: int, author: str, others: list[str], group: str) -> None:
    """n entries with one version each (a tiny notebook, no render: pages list entries, not renders)."""
    from alertlab.core import db
    from alertlab.gallery import notebooks

    rng = random.Random(7)
    now = datetime(2026, 11, 1)
    nb = notebooks.gz(b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    with db.engine("app").begin() as conn:
        first = (conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM gallery_notebooks").scalar() or 0) + 1
        rows, versions, tags, shares = [], [], [], []
        for i in range(n):
            nid = first + i
            words = rng.sample(WORDS, 4)
            owner = author if i % 3 else rng.choice(others)
            when = now + timedelta(minutes=i)
            rows.append((nid, f"bench-{nid}-{secrets.token_hex(3)}", owner, " ".join(words).capitalize(),
                         f"About {words[0]} and {words[1]}, entry {i}.", f"bench/{i}.ipynb", 1, rng.randrange(50),
                         when, when))
            versions.append((nid, 1, rows[-1][3], nb, 60, owner, when))
            tags += [(nid, t) for t in rng.sample(TAGS, 2)]
            kind = i % 3
            if kind == 0:
                shares.append(("notebook", str(nid), "all", "", "viewer", owner, when))
            elif kind == 1:
                shares.append(("notebook", str(nid), "group", group, "viewer", owner, when))
        conn.exec_driver_sql("INSERT INTO gallery_notebooks (id, slug, owner, title, description, source_path, "
                             "latest_version, stars, created, updated) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                             rows)
        conn.exec_driver_sql("INSERT INTO gallery_versions (notebook_id, version, title, ipynb_gz, ipynb_bytes, "
                             "published_by, created) VALUES (%s, %s, %s, %s, %s, %s, %s)", versions)
        conn.exec_driver_sql("INSERT INTO gallery_tags (notebook_id, tag) VALUES (%s, %s)", tags)
        conn.exec_driver_sql("INSERT INTO shares (resource_kind, resource_id, grantee_kind, grantee, role, created_by, "
                             "created) VALUES (%s, %s, %s, %s, %s, %s, %s)", shares)
        conn.exec_driver_sql(  # what store.publish keeps up to date
            "UPDATE gallery_notebooks n SET search_text = CONCAT_WS(' ', title, description, owner, (SELECT "
            "GROUP_CONCAT(tag SEPARATOR ' ') FROM gallery_tags t WHERE t.notebook_id = n.id)) WHERE id >= %s",
            (first,))


def fill_objects(n: int = 2000) -> None:
    from alertlab.core import db

    rng = random.Random(3)
    with db.engine("alerts").begin() as conn:
        conn.exec_driver_sql("INSERT IGNORE INTO objects (objectId, survey, ra, decl, healpix, ndet, latest_mag, "
                             "latest_band, lastmjd) VALUES (%s, 'ztf', %s, %s, 1, %s, %s, 'g', %s)",
                             [(f"ZTFbench{i:05d}", rng.uniform(0, 360), rng.uniform(-30, 80), rng.randrange(1, 40),
                               rng.uniform(14, 21), 61000 + rng.random()) for i in range(n)])


def time_pages(http, base: str, group: str, repeat: int) -> None:
    print(f"gallery page (HTML, through the proxy, as a member of {group}), {repeat} requests each:")
    cases = [("first page", "gallery"), ("text search", "gallery?q=supernova+light"),
             ("tag", "gallery?tag=tde"), ("group filter", f"gallery?group={group}"),
             ("sort by stars", "gallery?sort=stars"), ("page 40", "gallery?page=40"),
             ("JSON API, first page", "api/v1/gallery")]
    for label, path in cases:
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            r = http.get(base + path)
            times.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, (path, r.status_code, r.text[:200])
        print(f"  {label:<22} p50 {statistics.median(times):6.1f} ms   p95 {percentile(times, 95):6.1f} ms")


def time_dashboards(hub_url: str, slug: str, tokens: dict[str, str]) -> list[float]:
    import httpx

    barrier = threading.Barrier(len(tokens))
    kernels: list[tuple[str, str]] = []

    def one(name: str) -> float:
        with httpx.Client(timeout=300) as http:
            barrier.wait()
            t = time.perf_counter()
            r = http.get(f"{hub_url}services/alertlab/dashboards/{slug}",
                         headers={"Authorization": f"token {tokens[name]}"})
            elapsed = time.perf_counter() - t
            if r.status_code != 200 or "explorer-title" not in r.text:
                raise RuntimeError(f"{name}: {r.status_code} {r.text[:300]}")
            import re

            kernels.append((name, re.search(r'"kernelId":\s*"([0-9a-f-]{36})"', r.text).group(1)))
            return elapsed

    with ThreadPoolExecutor(len(tokens)) as pool:
        times = list(pool.map(one, list(tokens)))
    for name, kid in kernels:  # what the page does when its tab closes
        httpx.post(f"{hub_url}services/alertlab/dashboards/-/voila/api/shutdown/{kid}",
                   headers={"Authorization": f"token {tokens[name]}"}, timeout=60)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--viewers", type=int, default=10)
    parser.add_argument("--warm", type=int, default=10, help="warm dashboard kernels (ALERTLAB_DASHBOARD_WARM_KERNELS)")
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="alertlab-bench-gallery-")
    os.environ["ALERTLAB_HOME"] = home
    from alertlab.core import migrations
    from alertlab.core.services import mariadb
    from alertlab.core.services.process import free_port
    from alertlab.hub import accounts, control, unixusers
    from alertlab.hub.hubapi import HubAPI

    tag = secrets.token_hex(2)
    group = f"bench-team-{tag}"
    os.environ.update({"ALERTLAB_HUB_PORT": str(free_port()), "ALERTLAB_HUB_DB": f"alertlab_benchhub_{tag}",
                       "ALERTLAB_HUB_ADMINS": f"benchadmin-{tag}", "ALERTLAB_APP_DB": f"alertlab_benchapp_{tag}",
                       "ALERTLAB_ALERTS_DB": f"alertlab_benchalerts_{tag}", "ALERTLAB_IDLE_TIMEOUT": "0",
                       "ALERTLAB_DASHBOARD_WARM_KERNELS": str(args.warm)})
    for name in ("ALERTLAB_API_PORT", "ALERTLAB_DB_URL", "ALERTLAB_DB_READER_URL", "ALERTLAB_KAFKA"):
        os.environ.pop(name, None)
    author = f"benchauthor-{tag}"
    viewers = [f"benchview{i:02d}-{tag}" for i in range(args.viewers)]
    try:
        os.environ["ALERTLAB_DB_URL"] = mariadb.up()["url"]
        os.environ["ALERTLAB_DB_READER_URL"] = mariadb.url(mariadb.READER)
        for database in migrations.DATABASES:
            migrations.upgrade(database)
        info = control.up()
        api = HubAPI()
        for name in [author, *viewers]:
            accounts.ensure_user(name, secrets.token_urlsafe(12), groups=[group], api=api)
        tokens = {name: api.new_token(name, note="bench") for name in viewers}
        t = time.perf_counter()
        fill_gallery(args.entries, author, [f"other{i}-{tag}" for i in range(20)], group)
        fill_objects()
        print(f"{args.entries:,} gallery entries written in {time.perf_counter() - t:.1f} s; "
              f"{os.cpu_count()} CPUs; hub at {info['url']}")

        import httpx

        base = info["url"] + "services/alertlab/"
        with httpx.Client(headers={"Authorization": f"token {tokens[viewers[0]]}"}, timeout=60) as http:
            listing = http.get(base + "api/v1/gallery?per_page=200").json()["entries"]
            print(f"the viewer sees {len(listing)} entries on a 200-entry page (of "
                  f"~{args.entries * 2 // 3:,} visible to them)")
            for _ in range(5):  # warm up: connections, templates
                http.get(base + "gallery")
            time_pages(http, base, group, args.repeat)

        explorer = Path(__file__).resolve().parent.parent / "shared_notebooks" / "brightness-explorer.ipynb"
        author_token = api.new_token(author, note="bench")
        r = httpx.post(base + "api/v1/gallery", headers={"Authorization": f"token {author_token}"}, timeout=120,
                       json={"notebook": explorer.read_text(), "visibility": f"group:{group}",
                             "path": "bench/explorer.ipynb"})
        slug = r.json()["slug"]
        deadline = time.monotonic() + 180  # let the warm pool fill (the bench measures viewers, not boot)
        stats_url = f"http://127.0.0.1:{_voila_port(home)}/services/alertlab/dashboards/-/alertlab/stats"
        from alertlab.dashboards import paths

        while time.monotonic() < deadline:
            try:
                warm = httpx.get(stats_url, headers={"Authorization": f"token {paths.token()}"},
                                 timeout=10).json()["warm"]
            except (httpx.HTTPError, ValueError, KeyError):
                warm = -1
            if warm >= args.warm:
                break
            time.sleep(1)
        print(f"dashboard: {args.viewers} viewers open it at once ({warm} warm kernels waiting):")
        for round_ in (1, 2):
            times = time_dashboards(info["url"], slug, tokens)
            print(f"  round {round_}: first render p50 {statistics.median(times):.2f} s, "
                  f"p95 {percentile(times, 95):.2f} s, max {max(times):.2f} s")
            time.sleep(15)  # the pool refills
        api.close()
    except BaseException:
        log = os.path.join(home, "logs", "hub.log")
        if os.path.exists(log):
            print("".join(open(log).readlines()[-40:]))
        raise
    finally:
        control.down()
        for name in [author, *viewers]:
            unixusers.remove(name)
        mariadb.down()
        from alertlab.dashboards import paths

        paths.forget_installation()
        shutil.rmtree(home, ignore_errors=True)


def _voila_port(home: str) -> int:
    return json.loads((Path(home) / "dashboards" / "state.json").read_text())["voila_port"]


if __name__ == "__main__":
    main()
