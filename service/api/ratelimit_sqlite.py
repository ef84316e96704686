"""Rate-limit counters in one SQLite file that a server's gunicorn workers share (issue 13, item 18).

Without Redis, Flask-Limiter's in-memory counters lived in each worker: a worker recycled after
GRADSTAB_MAX_REQUESTS (which the client's own 429s bring closer) took its counters with it, and with
GRADSTAB_RATE_LIMIT=5/minute 100 requests got through in 45 s. This storage keeps them in a file
(GRADSTAB_RATELIMIT_DB; the gunicorn master makes a fresh one per server run, like the Prometheus
folder), so a limit holds across recycled and sibling workers of one server. Replicas on several
machines still need REDIS_URL.

A `limits` storage registered for the scheme `gradstab-sqlite://<path>`, with the moving window
Flask-Limiter is configured for (and the fixed-window counters `limits` requires of every storage).
Each operation is one short transaction; `BEGIN IMMEDIATE` serialises writers across processes. A moving-window
hit is one row carrying its amount (the work budget charges hundreds of GFLOP at once: a row per unit made
20000 rows a minute per key), and the file is written with `synchronous=NORMAL` (WAL: no fsync per commit; a
power cut may lose the last counts of a file that is fresh per server run anyway). Issue 20 item 7: the two
took the work budget's charge from 3.5 ms to a fraction of one per analysis (bench/bench_http.py).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from limits.storage import MovingWindowSupport, Storage

SCHEME = "gradstab-sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS window_hits (key TEXT NOT NULL, at REAL NOT NULL, amount INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS window_hits_key_at ON window_hits (key, at);
CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL, expires REAL NOT NULL);
"""


class SQLiteStorage(Storage, MovingWindowSupport):
    STORAGE_SCHEME = [SCHEME]  # noqa: RUF012 (limits' registry reads this class attribute as a list)

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: float | str | bool) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.path = (uri or "").split("://", 1)[1] if uri and "://" in uri else ":memory:"
        self._local = threading.local()
        self._db().executescript(_SCHEMA)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sqlite3.Error

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:  # one connection per thread (and per process: opened lazily after the fork)
            db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # ---------------------------------------------------------------- moving window

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        now = time.time()
        with self._tx() as db:
            db.execute("DELETE FROM window_hits WHERE key = ? AND at < ?", (key, now - expiry))
            (count,) = db.execute("SELECT COALESCE(SUM(amount), 0) FROM window_hits WHERE key = ?", (key,)).fetchone()
            if count + amount > limit:
                return False
            db.execute("INSERT INTO window_hits (key, at, amount) VALUES (?, ?, ?)", (key, now, amount))
            return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        oldest, count = (
            self._db()
            .execute(
                "SELECT MIN(at), COALESCE(SUM(amount), 0) FROM window_hits WHERE key = ? AND at >= ?",
                (key, now - expiry),
            )
            .fetchone()
        )
        return (oldest if count else now), int(count)

    # ---------------------------------------------------------------- fixed-window counters

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self._tx() as db:
            row = db.execute("SELECT value, expires FROM counters WHERE key = ?", (key,)).fetchone()
            if row is None or row[1] <= now:
                value = amount
                db.execute("INSERT OR REPLACE INTO counters VALUES (?, ?, ?)", (key, value, now + expiry))
            else:
                value = row[0] + amount
                db.execute("UPDATE counters SET value = ? WHERE key = ?", (value, key))
            return int(value)

    def get(self, key: str) -> int:
        row = self._db().execute("SELECT value, expires FROM counters WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row is not None and row[1] > time.time() else 0

    def get_expiry(self, key: str) -> float:
        row = self._db().execute("SELECT expires FROM counters WHERE key = ?", (key,)).fetchone()
        return float(row[0]) if row is not None else time.time()

    def check(self) -> bool:
        try:
            self._db().execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        with self._tx() as db:
            n = db.execute("DELETE FROM window_hits").rowcount + db.execute("DELETE FROM counters").rowcount
        return int(n)

    def clear(self, key: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM window_hits WHERE key = ?", (key,))
            db.execute("DELETE FROM counters WHERE key = ?", (key,))
