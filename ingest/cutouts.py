"""Where the three stamps of each alert are kept, stored once.

Stamps are most of an alert's bytes (~40 KB of its ~50), and writing them as
MariaDB BLOBs was the largest cost of the ingest. By default each batch's new
stamps are appended to one pack file under ALERTLAB_CUTOUT_DIR
($ALERTLAB_HOME/cutouts/<date>/<uuid>.pack) and the `cutouts` table holds only
where each stamp is (pack, pack_offset, length): one sequential write per batch.
ALERTLAB_CUTOUT_STORE=db keeps the bytes in `cutouts.data` instead.

Idempotent: stamps already indexed are not written again; a crash between the
pack write and the index commit leaves an unreferenced pack, never a missing or
doubled stamp. With several ingest hosts, ALERTLAB_CUTOUT_DIR is shared storage."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.engine import Connection, Engine

from alertlab.core import settings
from alertlab.core.services.process import private_dir
from alertlab.ingest import sql_values

SQL_INDEX_HEAD = "INSERT IGNORE INTO cutouts (detectionId, kind, fileName, pack, pack_offset, length, data) VALUES"
SQL_INDEX = SQL_INDEX_HEAD + " (%s,%s,%s,%s,%s,%s,%s)"


def root() -> Path:
    configured = settings.get("ALERTLAB_CUTOUT_DIR")
    return Path(configured).expanduser().resolve() if configured else settings.home() / "cutouts"


def in_database() -> bool:
    return settings.get("ALERTLAB_CUTOUT_STORE") == "db"


def write(engine: Engine, cutouts: list[dict]) -> int:
    """Store the stamps not stored yet ({detectionId, kind, fileName, data} each); returns how many."""
    if not cutouts:
        return 0
    with engine.begin() as conn:
        ids = sorted({c["detectionId"] for c in cutouts})
        known = set(conn.exec_driver_sql(
            f"SELECT detectionId, kind FROM cutouts WHERE detectionId IN ({','.join(['%s'] * len(ids))})",
            tuple(ids)).fetchall())
        new = [c for c in cutouts if (c["detectionId"], c["kind"]) not in known]
        if not new:
            return 0
        if in_database():
            rows = [(c["detectionId"], c["kind"], c["fileName"], None, None, None, c["data"]) for c in new]
            for i in range(0, len(rows), 100):  # BLOB rows: keep packets well under max_allowed_packet
                conn.exec_driver_sql(SQL_INDEX, rows[i:i + 100])
        else:  # index rows without bytes: the ingest's fast literal writer
            sql_values.insert(conn, SQL_INDEX_HEAD, _write_pack(new))
    return len(new)


def _write_pack(cutouts: list[dict]) -> list[tuple]:
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    private_dir(root())
    directory = private_dir(root() / day)
    name = f"{day}/{uuid.uuid4().hex}.pack"
    rows, offset = [], 0
    tmp = directory / (name.split("/")[1] + ".partial")
    for c in cutouts:
        rows.append((c["detectionId"], c["kind"], c["fileName"], name, offset, len(c["data"]), None))
        offset += len(c["data"])
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # as open() makes it; the folder is private
    try:
        datas = [c["data"] for c in cutouts]
        for i in range(0, len(datas), 512):  # one system call per 512 stamps (IOV_MAX is 1024)
            chunk = datas[i:i + 512]
            written, want = os.writev(fd, chunk), sum(map(len, chunk))
            if written != want:  # a short write (rare, e.g. a signal): the rest one by one
                rest = b"".join(chunk)[written:]
                while rest:
                    rest = rest[os.write(fd, rest):]
    finally:
        os.close(fd)
    os.replace(tmp, root() / name)
    return rows


def read(conn: Connection, detection_id: int, kind: str) -> bytes | None:
    """The stamp as the survey sent it (gzip-compressed FITS), or None."""
    row = conn.exec_driver_sql("SELECT pack, pack_offset, length, data FROM cutouts WHERE detectionId=%s AND kind=%s",
                               (detection_id, kind)).first()
    if row is None:
        return None
    pack, offset, length, data = row
    if data is not None:
        return bytes(data)
    with open(root() / pack, "rb") as fh:
        fh.seek(offset)
        return fh.read(length)
