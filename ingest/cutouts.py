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

SQL_INDEX = ("INSERT IGNORE INTO cutouts (detectionId, kind, fileName, pack, pack_offset, length, data) "
             "VALUES (%s,%s,%s,%s,%s,%s,%s)")


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
        else:
            rows = _write_pack(new)
        chunk = 100 if in_database() else 1000  # BLOB rows: keep packets well under max_allowed_packet
        for i in range(0, len(rows), chunk):
            conn.exec_driver_sql(SQL_INDEX, rows[i:i + chunk])
    return len(new)


def _write_pack(cutouts: list[dict]) -> list[tuple]:
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    private_dir(root())
    directory = private_dir(root() / day)
    name = f"{day}/{uuid.uuid4().hex}.pack"
    rows, offset = [], 0
    tmp = directory / (name.split("/")[1] + ".partial")
    with open(tmp, "wb") as fh:
        for c in cutouts:
            data = c["data"]
            fh.write(data)
            rows.append((c["detectionId"], c["kind"], c["fileName"], name, offset, len(data), None))
            offset += len(data)
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
