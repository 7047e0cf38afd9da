"""All 561 real ZTF alerts through real Kafka into real MariaDB."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time

import fastavro
import pytest

from ingest_helpers import (ALERTLAB, ZTF_FILES, counts_for, fingerprint, ingest, read_topic, replay, rows, scalar,
                            ztf_expected)

pytestmark = pytest.mark.services


@pytest.fixture
def matches_topic(monkeypatch, topic, fresh_alerts_db):
    name = f"{topic}-matches"
    monkeypatch.setenv("ALERTLAB_MATCHES_TOPIC", name)
    monkeypatch.setenv("ALERTLAB_DEADLETTER_TOPIC", f"{topic}-dlq")
    return name


def test_all_shared_alerts_through_kafka_then_replay_changes_nothing(services, topic, matches_topic):
    exp = ztf_expected()
    replay(topic)
    totals = ingest(topic)
    assert totals.alerts == 561 and totals.rejects == 0
    got = counts_for(exp["objects"])
    assert got == {"objects": len(exp["objects"]), "detections": len(exp["detections"]),
                   "nondetections": len(exp["nondetections"]), "cutouts": 3 * len(exp["candidates"])}

    # spot-check values against the Avro payloads
    for candid in sorted(exp["candidates"])[::50]:
        object_id, c = exp["candidates"][candid]
        (oid, mjd, band, mag, magerr, flux, isdiffpos, rel, has_alert), = rows(
            "SELECT objectId, mjd, band, mag, magerr, flux, isdiffpos, reliability, has_alert FROM detections "
            "WHERE detectionId=%s", (candid,))
        assert oid == object_id and has_alert == 1
        assert mjd == pytest.approx(c["jd"] - 2400000.5, abs=1e-9)
        assert band == {1: "g", 2: "r", 3: "i"}[c["fid"]]
        assert mag == pytest.approx(c["magpsf"]) and magerr == pytest.approx(c["sigmapsf"])
        positive = c["isdiffpos"] in ("t", "1")
        assert isdiffpos == int(positive)
        assert flux == pytest.approx((1 if positive else -1) * 10 ** (-0.4 * (c["magpsf"] - 31.4)), rel=1e-9)
        assert rel == pytest.approx(c["drb"] if c.get("drb") is not None else c["rb"])
    # an object row agrees with its detections
    oid = rows("SELECT objectId FROM objects WHERE objectId IN (%s) ORDER BY ndet DESC LIMIT 1"
               % ",".join(f"'{o}'" for o in exp["objects"]))[0][0]
    (ndet, first, last, rmean), = rows("SELECT ndet, firstmjd, lastmjd, r_mean FROM objects WHERE objectId=%s", (oid,))
    (n, lo, hi, rm), = rows("SELECT COUNT(*), MIN(mjd), MAX(mjd), AVG(IF(band='r', mag, NULL)) FROM detections "
                            "WHERE objectId=%s", (oid,))
    assert (ndet, first, last) == (n, lo, hi) and rmean == pytest.approx(rm)
    # a cutout is the stamp as received
    candid = sorted(exp["candidates"])[0]
    with open(next(p for p in ZTF_FILES if _candid_of(p) == candid), "rb") as fh:
        alert = next(fastavro.reader(fh))
    from alertlab.core import db
    from alertlab.ingest import cutouts

    with db.engine("alerts").connect() as conn:
        assert cutouts.read(conn, candid, "science") == alert["cutoutScience"]["stampData"]
        assert cutouts.read(conn, candid, "difference") == alert["cutoutDifference"]["stampData"]
    assert rows("SELECT data FROM cutouts WHERE detectionId=%s", (candid,)) == [(None,)] * 3  # in pack files

    before = fingerprint(exp["objects"])
    replay(topic)  # a second replay: every alert again
    again = ingest(topic)
    assert again.alerts == 561 and again.new_alerts == 0
    assert counts_for(exp["objects"]) == got
    after = fingerprint(exp["objects"])
    for table in before:
        changed = [(x, y) for x, y in zip(before[table], after[table]) if x != y]
        assert not changed and len(before[table]) == len(after[table]), (table, changed[:2])


def _candid_of(path):
    with open(path, "rb") as fh:
        return next(fastavro.reader(fh))["candidate"]["candid"]


def test_bad_messages_go_to_dead_letters_and_the_stream_goes_on(services, topic, matches_topic):
    with open(ZTF_FILES[0], "rb") as fh:
        good = fh.read()
    other_schema = io.BytesIO()
    fastavro.writer(other_schema, {"type": "record", "name": "Weather", "fields": [{"name": "t", "type": "double"}]},
                    [{"t": 12.5}])
    # valid Avro, a valid schema, but a value no arithmetic survives (a magnitude of -1000)
    reader = fastavro.reader(io.BytesIO(good))
    absurd_alert = next(iter(reader))
    absurd_alert["candidate"]["magpsf"] = -1000.0
    absurd = io.BytesIO()
    fastavro.writer(absurd, fastavro.parse_schema(reader.writer_schema), [absurd_alert])
    # the same in an earlier detection the alert repeats (history rows are built late, only when new: a bad
    # one must still reject its alert while it is decoded, not fail the batch at commit and stall the stream)
    for path in ZTF_FILES:
        with open(path, "rb") as fh:
            history_reader = fastavro.reader(fh)
            with_history = next(iter(history_reader))
        earlier = [p for p in with_history["prv_candidates"] or [] if p["candid"] and p["magpsf"] is not None]
        if earlier:
            break
    earlier[0]["magpsf"] = -1000.0
    absurd_history = io.BytesIO()
    fastavro.writer(absurd_history, fastavro.parse_schema(history_reader.writer_schema), [with_history])
    bad = [b"\x89garbage bytes, not avro at all", good[: len(good) // 2], other_schema.getvalue(), b"",
           absurd.getvalue(), absurd_history.getvalue()]
    replay(topic, files=ZTF_FILES[:5], extra=bad)
    replay(topic, files=ZTF_FILES[5:10])
    totals = ingest(topic)
    assert totals.rejects == 6 and totals.alerts == 10
    rejects = rows("SELECT reason, kafka_partition, kafka_offset, first_bytes, size FROM ingest_rejects "
                   "WHERE topic=%s ORDER BY kafka_offset", (topic,))
    assert [r[2] for r in rejects] == [5, 6, 7, 8, 9, 10]
    reasons = [r[0] for r in rejects]
    assert "neither an Avro container nor the Confluent wire format" in reasons[0]
    assert "undecodable Avro" in reasons[1]
    assert "not a ZTF or LSST alert" in reasons[2]
    assert reasons[3] == "empty message"
    assert reasons[4].startswith("invalid ZTF alert: OverflowError")
    assert reasons[5].startswith("invalid ZTF alert: OverflowError")
    assert rejects[0][3] == bad[0][:64] and rejects[1][4] == len(good) // 2
    dead = read_topic(f"{topic}-dlq", expect=6)
    assert [m.value() for m in dead] == bad
    assert dict(dead[2].headers())["reason"].decode().startswith("not a ZTF or LSST alert")
    # the stream went on: the alerts after the bad messages are stored
    for path in ZTF_FILES[5:10]:
        assert scalar("SELECT has_alert FROM detections WHERE detectionId=%s", (_candid_of(path),)) == 1


def test_kill_9_mid_stream_then_restart_loses_and_doubles_nothing(services, topic, matches_topic):
    """A watchlist with a cone on every alert makes one hit event per alert: after a kill -9 and a
    restart, every alert has its rows and its event; events are at least once, rows exactly once."""
    from alertlab.ingest.watchlists import insert_cones

    exp = ztf_expected()
    cands = exp["candidates"]
    from alertlab.core import db

    with db.engine("alerts").begin() as conn:
        wl = conn.exec_driver_sql("INSERT INTO watchlists (owner, name) VALUES ('kill9-test', %s)", (topic,)).lastrowid
        insert_cones(conn, wl, [c["ra"] for _, c in cands.values()], [c["dec"] for _, c in cands.values()],
                     [1.5] * len(cands), [str(k) for k in cands])
    try:
        replay(topic)
        env = {**os.environ, "ALERTLAB_INGEST_BATCH": "25", "ALERTLAB_INGEST_FLUSH_MS": "100"}
        proc = subprocess.Popen([ALERTLAB, "ingest", "--kafka", topic, "--group", f"g-{topic}", "--quiet"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        ids = ",".join(str(c) for c in cands)
        while time.monotonic() < deadline:
            stored = scalar(f"SELECT COUNT(DISTINCT detectionId) FROM watchlist_hits WHERE watchlist_id={wl}")
            if stored >= 100:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        partial = scalar(f"SELECT COUNT(DISTINCT detectionId) FROM watchlist_hits WHERE watchlist_id={wl}")
        assert 100 <= partial < len(cands), "the kill should land mid-stream"

        subprocess.run([ALERTLAB, "ingest", "--kafka", topic, "--group", f"g-{topic}", "--until-idle", "2", "--quiet"],
                       env=env, check=True, timeout=300)
        assert scalar(f"SELECT COUNT(*) FROM detections WHERE has_alert=1 AND detectionId IN ({ids})") == len(cands)
        assert scalar(f"SELECT COUNT(DISTINCT detectionId) FROM watchlist_hits WHERE watchlist_id={wl}") == len(cands)
        assert scalar(f"SELECT COUNT(*) FROM detections WHERE published=0 AND detectionId IN ({ids})") == 0
        got = [e for e in _events(matches_topic) if e["kind"] == "watchlist" and e["id"] == wl]
        hits = scalar(f"SELECT COUNT(*) FROM watchlist_hits WHERE watchlist_id={wl}")  # one row per (cone, alert)
        assert {e["detectionId"] for e in got} == set(cands)      # nothing lost
        most = scalar(f"SELECT MAX(n) FROM (SELECT COUNT(*) n FROM watchlist_hits WHERE watchlist_id={wl} "
                      "GROUP BY detectionId) t")  # (the shared alerts sit on a few positions: many cones each)
        assert hits <= len(got) <= hits + 25 * most   # again at most the events of the batch in flight
    finally:
        with db.engine("alerts").begin() as conn:
            conn.exec_driver_sql(f"DELETE FROM watchlist_hits WHERE watchlist_id={wl}")
            conn.exec_driver_sql(f"DELETE FROM watchlist_cones WHERE watchlist_id={wl}")
            conn.exec_driver_sql(f"DELETE FROM watchlists WHERE id={wl}")


def _events(topic):
    import json

    return [json.loads(m.value()) for m in read_topic(topic, timeout=30)]


def _quirk_files() -> tuple[str, str, int, float]:
    """(a file whose alert is detection X, a file holding X in its history with another jd, X, X's own jd)."""
    own, history = {}, {}
    for path in ZTF_FILES:
        with open(path, "rb") as fh:
            for a in fastavro.reader(fh):
                own[a["candidate"]["candid"]] = (path, a["candidate"]["jd"])
                for p in a["prv_candidates"] or []:
                    if p["candid"] is not None:
                        history.setdefault(p["candid"], []).append((path, p["jd"]))
    for candid, (path, jd) in sorted(own.items()):
        for other, other_jd in history.get(candid, []):
            if other != path and other_jd != jd:
                return path, other, candid, jd
    raise AssertionError("the shared alerts no longer hold a detection whose history copy differs")


@pytest.mark.parametrize("order", ["history first", "alert first"])
def test_an_alerts_own_detection_wins_over_a_differing_copy_in_another_history(services, fresh_alerts_db, order):
    """Real ZTF data: some candids appear in another alert's history with another jd. What is stored must not
    depend on which alert came first (redelivery and replay would otherwise change the row)."""
    from alertlab.ingest.runner import ingest_files

    own_file, history_file, candid, jd = _quirk_files()
    files = [history_file, own_file] if order == "history first" else [own_file, history_file]
    for path in files:  # separate batches, in this order
        ingest_files([path])
    (mjd,), = rows("SELECT mjd FROM detections WHERE detectionId=%s", (candid,))
    assert mjd == pytest.approx(jd - 2400000.5, abs=1e-9)


def test_an_older_alert_arriving_late_keeps_the_newest_alerts_object_fields(services, fresh_alerts_db):
    """sgscore1/distpsnr1 come from an object's newest alert; a late or replayed older one must not overwrite them."""
    from alertlab.ingest.runner import ingest_files

    by_object = {}
    for path in ZTF_FILES:
        with open(path, "rb") as fh:
            a = next(fastavro.reader(fh))
        by_object.setdefault(a["objectId"], []).append((a["candidate"]["jd"], a["candidate"]["distpsnr1"], path))
    object_id, alerts = next((o, sorted(v)) for o, v in sorted(by_object.items())
                             if len(v) > 1 and sorted(v)[0][1] != sorted(v)[-1][1])
    (_, old_value, old_path), (_, new_value, new_path) = alerts[0], alerts[-1]
    ingest_files([new_path])
    ingest_files([old_path])  # late, in a batch of its own
    assert rows("SELECT distpsnr1 FROM objects WHERE objectId=%s", (object_id,)) == [(pytest.approx(new_value),)]
    assert new_value != pytest.approx(old_value)


def test_a_replay_sends_the_database_nothing_it_already_holds(services, fresh_alerts_db):
    """Each ZTF alert repeats its object's history and upper limits; a replay (or the next alert of the
    object) sends only what is new: the alerts' own detections (their upsert) and the recomputed objects."""
    from alertlab.ingest.runner import ingest_files

    files = ZTF_FILES[:120]
    first = ingest_files(files, match=False)
    before = counts_for_all()
    again = ingest_files(files, match=False)
    assert counts_for_all() == before
    assert before["nondetections"] > 0
    objects = scalar("SELECT COUNT(*) FROM objects")
    alerts = scalar("SELECT COUNT(*) FROM detections WHERE has_alert = 1")  # a few files repeat a candid
    assert again.rows == alerts + objects < first.rows


def counts_for_all() -> dict:
    return {t: scalar(f"SELECT COUNT(*) FROM {t}") for t in ("detections", "nondetections", "forced_photometry",
                                                             "cutouts")}


def test_two_writers_whose_alerts_are_each_others_history_do_not_deadlock(services, fresh_alerts_db):
    """Two ingest processes get alerts of the same objects (a topic is not keyed by object), so each batch
    repeats as history detections that the other batch stores as its own. Both batches' rows must lock in one
    order: as two statements (own rows, then history), each writer held its own rows and waited for the
    other's, and one batch was rolled back and redone (a deadlock, about four times a paced bench run)."""
    import threading

    from alertlab.core import db
    from alertlab.ingest.decode import decode, to_rows
    from alertlab.ingest.store import Store
    from alertlab.ingest.synthetic import ZtfGenerator

    def two_batches(seed: int) -> list[list]:
        """Each object's alerts in time order, alternately to the two writers: each batch holds the history of
        the other's alerts."""
        by_object: dict[str, list] = {}
        for message in ZtfGenerator(seed=seed, n_objects=150).messages(600):
            for alert in decode(message):
                a = to_rows(alert)
                by_object.setdefault(a.objectId, []).append(a)
        batches: list[list] = [[], []]
        for alerts in by_object.values():
            for i, a in enumerate(sorted(alerts, key=lambda a: a.mjd)):
                batches[i % 2].append(a)
        assert min(map(len, batches)) > 200
        return batches

    def deadlocks() -> int:
        with db.engine("alerts").connect() as conn:
            return int(conn.exec_driver_sql("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'").fetchone()[1])

    before, own = deadlocks(), set()
    for seed in (11, 12, 13):  # three rounds of new objects: a deadlock needs the two transactions to overlap
        batches, start, errors = two_batches(seed), threading.Barrier(2), []
        own |= {a.detectionId for b in batches for a in b}

        def write(batch):
            try:
                store = Store(db.engine("alerts"))
                start.wait()
                store.write(batch)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(b,)) for b in batches]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
    assert deadlocks() == before
    assert scalar("SELECT COUNT(*) FROM detections WHERE has_alert = 1") == len(own)


def test_a_batch_on_connections_the_server_closed_is_written_on_new_ones(services, fresh_alerts_db):
    """The store does not ping its pooled connections before each transaction (two round trips a transaction,
    four transactions a batch). A connection the server closed meanwhile (a restart, wait_timeout, KILL) fails
    the batch's first statement: the transaction runs again on a new connection, and nothing is lost."""
    from alertlab.core import db
    from alertlab.ingest.decode import decode, to_rows
    from alertlab.ingest.store import Store

    alerts = []
    for path in ZTF_FILES[:60]:
        with open(path, "rb") as fh:
            alerts += [to_rows(a) for a in decode(fh.read())]
    store = Store(db.engine("alerts"))
    store.write(alerts[:30])
    # the two connections the first batch left in the store's pool (the commit's and the cutouts'), closed
    # by the server
    with store.engine.connect() as first, store.engine.connect() as second:
        pooled = {c.exec_driver_sql("SELECT CONNECTION_ID()").scalar() for c in (first, second)}
    with db.engine("alerts").connect() as admin:
        for connection_id in pooled:
            admin.exec_driver_sql(f"KILL CONNECTION {int(connection_id)}")
    result = store.write(alerts[30:])
    store.mark_published([a.detectionId for a in result.alerts])
    own = {a.detectionId for a in alerts}
    assert scalar("SELECT COUNT(*) FROM detections WHERE has_alert = 1") == len(own)
    assert scalar("SELECT COUNT(*) FROM detections WHERE published = 1") == len(result.alerts) > 0
    assert scalar("SELECT COUNT(DISTINCT detectionId) FROM cutouts") == len(own)
    assert scalar("SELECT COUNT(*) FROM objects") == len({a.objectId for a in alerts})
