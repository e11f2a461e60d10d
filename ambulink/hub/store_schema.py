"""The case store's tables (schema version in ``PRAGMA user_version``) and the one query that
rebuilds a stream's seq bookkeeping from them."""

from __future__ import annotations

import sqlite3

from ambulink.hub.store_seq import SeqTracker

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    case_id TEXT PRIMARY KEY,
    unit_id TEXT NOT NULL,
    created_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS streams (
    case_id TEXT NOT NULL REFERENCES cases (case_id),
    stream_id INTEGER NOT NULL,
    fs INTEGER NOT NULL,
    leads TEXT NOT NULL,
    gain REAL NOT NULL,
    started_at REAL NOT NULL,
    PRIMARY KEY (case_id, stream_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS frames (
    case_id TEXT NOT NULL,
    stream_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    first_sample INTEGER NOT NULL,
    n_samples INTEGER NOT NULL,
    lead_off INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (case_id, stream_id, seq),
    FOREIGN KEY (case_id, stream_id) REFERENCES streams (case_id, stream_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vitals (
    id INTEGER PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases (case_id),
    at REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS vitals_by_case ON vitals (case_id, at);
"""


def load_seqs(conn: sqlite3.Connection, case_id: str, stream_id: int) -> SeqTracker:
    """Recompute a stream's stored seqs from the database (on first use after open)."""
    key = (case_id, stream_id)
    has_zero = conn.execute(
        "SELECT 1 FROM frames WHERE case_id=? AND stream_id=? AND seq=0", key
    ).fetchone()
    contiguous = -1
    if has_zero:
        # The first stored seq whose successor is not stored ends the contiguous run; the
        # primary-key index lets SQLite walk the run in order and stop there.
        contiguous = conn.execute(
            "SELECT f.seq FROM frames AS f WHERE f.case_id=? AND f.stream_id=? AND NOT EXISTS "
            "(SELECT 1 FROM frames AS g WHERE g.case_id=f.case_id AND g.stream_id=f.stream_id "
            "AND g.seq=f.seq+1) ORDER BY f.seq LIMIT 1",
            key,
        ).fetchone()[0]
    above = {
        row[0]
        for row in conn.execute(
            "SELECT seq FROM frames WHERE case_id=? AND stream_id=? AND seq>?", (*key, contiguous)
        )
    }
    return SeqTracker(contiguous, above)
