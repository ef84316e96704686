"""Where jobs live: Redis (shared by the API and every worker, on any machine) or, without
REDIS_URL, one SQLite file (shared by the server's gunicorn workers on one machine).

Both keep the same facts (see model.py): the immutable record with its plan, the times it was
started, cancelled and finished, and the point entries, first write wins. Keys expire
`ttl_s` after the job finishes (or after creation, while it runs).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from typing import Any, Protocol

from .errors import StoreUnavailable
from .model import TERMINAL, JobRecord, JobView, now
from .stats import RedisStats, SQLiteStats, Stats

KEY_PREFIX = "gradstab:job:"


class JobStore(Protocol):
    backend: str
    stats: Stats  # task outcomes and job run times, shared by every process that runs tasks

    def create(self, record: JobRecord, ttl_s: int) -> tuple[JobRecord, bool]: ...

    def get(self, job_id: str, with_plan: bool = False) -> JobRecord | None: ...

    def entries(self, job_id: str) -> dict[int, dict[str, Any]]: ...

    def mark_started(self, job_id: str) -> None: ...

    def set_training_steps(self, job_id: str, done: int, total: int) -> None: ...

    def add_entry(self, job_id: str, index: int, entry: dict[str, Any], ttl_s: int) -> bool: ...

    def cancel(self, job_id: str, ttl_s: int) -> JobRecord | None: ...

    def unfinished(self, owner: str) -> int: ...

    def delete(self, job_id: str) -> None: ...


def view(store: JobStore, job_id: str, with_plan: bool = False) -> JobView | None:
    record = store.get(job_id, with_plan=with_plan)
    if record is None:
        return None
    return JobView(record, store.entries(job_id))


def _record(data: dict[str, Any], state: dict[str, Any], with_plan: bool) -> JobRecord:
    return JobRecord(
        id=data["id"],
        kind=data["kind"],
        total=data["total"],
        created_at=data["created_at"],
        owner=data.get("owner", "anonymous"),
        started_at=state.get("started_at"),
        cancelled_at=state.get("cancelled_at"),
        finished_at=state.get("finished_at"),
        plan=data["plan"] if with_plan else None,
        training_steps=_steps(state.get("training_steps_done"), state.get("training_steps_total")),
    )


def _steps(done: float | None, total: float | None) -> tuple[int, int] | None:
    return None if done is None or total is None else (int(done), int(total))


def _immutable(record: JobRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "kind": record.kind,
        "total": record.total,
        "created_at": record.created_at,
        "owner": record.owner,
        "plan": record.plan,
    }


class RedisJobStore:
    backend = "redis"

    def __init__(self, url: str, prefix: str = KEY_PREFIX) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=2.0)
        self.prefix = prefix
        self._errors = (redis.RedisError, OSError)
        self.stats = Stats(RedisStats(self.client, prefix + "stats"))

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            raise StoreUnavailable(f"the job store (Redis) is unavailable: {exc}") from exc

    def _keys(self, job_id: str) -> tuple[str, str, str]:
        k = self.prefix + job_id
        return k, k + ":state", k + ":points"

    def create(self, record: JobRecord, ttl_s: int) -> tuple[JobRecord, bool]:
        key, _, _ = self._keys(record.id)
        with self._guard():
            created = self.client.set(key, json.dumps(_immutable(record)), nx=True, ex=ttl_s)
            if created:
                owner_key = f"{self.prefix}owner:{record.owner}"
                self.client.zadd(owner_key, {record.id: record.created_at})
                self.client.expire(owner_key, ttl_s)
                return record, True
        existing = self.get(record.id, with_plan=True)
        if existing is None:  # expired between the two calls: try once more
            return self.create(record, ttl_s)
        return existing, False

    def get(self, job_id: str, with_plan: bool = False) -> JobRecord | None:
        key, state_key, _ = self._keys(job_id)
        with self._guard():
            raw, state = self.client.get(key), self.client.hgetall(state_key)
        if raw is None:
            return None
        return _record(json.loads(raw), {k.decode(): float(v) for k, v in state.items()}, with_plan)

    def entries(self, job_id: str) -> dict[int, dict[str, Any]]:
        _, _, points_key = self._keys(job_id)
        with self._guard():
            raw = self.client.hgetall(points_key)
        return {int(k): json.loads(v) for k, v in raw.items()}

    def mark_started(self, job_id: str) -> None:
        key, state_key, _ = self._keys(job_id)
        with self._guard():
            ttl = self.client.ttl(key)
            pipe = self.client.pipeline(transaction=True)
            pipe.hsetnx(state_key, "started_at", now())
            if ttl and ttl > 0:
                pipe.expire(state_key, ttl)
            pipe.execute()

    def set_training_steps(self, job_id: str, done: int, total: int) -> None:
        key, state_key, _ = self._keys(job_id)
        with self._guard():
            ttl = self.client.ttl(key)
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(state_key, mapping={"training_steps_done": done, "training_steps_total": total})
            if ttl and ttl > 0:
                pipe.expire(state_key, ttl)
            pipe.execute()

    def _expire_all(self, job_id: str, ttl_s: int) -> None:
        pipe = self.client.pipeline(transaction=False)
        for k in self._keys(job_id):
            pipe.expire(k, ttl_s)
        pipe.execute()

    def add_entry(self, job_id: str, index: int, entry: dict[str, Any], ttl_s: int) -> bool:
        key, state_key, points_key = self._keys(job_id)
        with self._guard():
            raw = self.client.get(key)
            if raw is None:
                return False  # expired or never existed: nothing to deliver to
            total = json.loads(raw)["total"]
            pipe = self.client.pipeline(transaction=True)
            pipe.hsetnx(points_key, str(index), json.dumps(entry, allow_nan=False))
            pipe.hlen(points_key)
            pipe.expire(points_key, max(1, self.client.ttl(key)))
            first, count, _ = pipe.execute()
            if first and count >= total:
                finished = now()
                self.client.hsetnx(state_key, "finished_at", finished)
                self._expire_all(job_id, ttl_s)  # results are kept ttl_s from the finish
                started = self.client.hget(state_key, "started_at")
                self.stats.job_finished(finished - float(started or finished))
        return bool(first)

    def cancel(self, job_id: str, ttl_s: int) -> JobRecord | None:
        record = self.get(job_id)
        if record is None:
            return None
        if JobView(record, self.entries(job_id)).status not in TERMINAL:
            _, state_key, _ = self._keys(job_id)
            with self._guard():
                self.client.hsetnx(state_key, "cancelled_at", now())
                self._expire_all(job_id, ttl_s)
        return self.get(job_id)

    def delete(self, job_id: str) -> None:
        with self._guard():
            self.client.delete(*self._keys(job_id))

    def unfinished(self, owner: str) -> int:
        owner_key = f"{self.prefix}owner:{owner}"
        with self._guard():
            ids = [i.decode() for i in self.client.zrange(owner_key, 0, -1)]
        count = 0
        for job_id in ids:
            v = view(self, job_id)
            if v is None or v.status in TERMINAL:
                with self._guard():
                    self.client.zrem(owner_key, job_id)
            else:
                count += 1
        return count


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, body TEXT NOT NULL, owner TEXT NOT NULL, expires_at REAL NOT NULL,
    started_at REAL, cancelled_at REAL, finished_at REAL
);
CREATE TABLE IF NOT EXISTS points (
    job_id TEXT NOT NULL, idx INTEGER NOT NULL, entry TEXT NOT NULL, PRIMARY KEY (job_id, idx)
);
CREATE TABLE IF NOT EXISTS training_steps (
    job_id TEXT PRIMARY KEY, done INTEGER NOT NULL, total INTEGER NOT NULL
);
"""


class SQLiteJobStore:
    """One file, shared by the processes of one server (gunicorn workers); a connection per call."""

    backend = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        with self._conn() as db:
            db.executescript(_SCHEMA)
        self.stats = Stats(SQLiteStats(self._conn))

    @contextlib.contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the job store {self.path} cannot be opened: {exc}") from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")
            yield db
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the job store {self.path} failed: {exc}") from exc
        finally:
            db.close()

    def _purge(self, db: sqlite3.Connection) -> None:
        expired = [r[0] for r in db.execute("SELECT id FROM jobs WHERE expires_at < ?", (now(),))]
        for job_id in expired:
            db.execute("DELETE FROM points WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM training_steps WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def create(self, record: JobRecord, ttl_s: int) -> tuple[JobRecord, bool]:
        with self._conn() as db:
            db.execute("BEGIN IMMEDIATE")
            self._purge(db)
            cur = db.execute(
                "INSERT OR IGNORE INTO jobs (id, body, owner, expires_at) VALUES (?, ?, ?, ?)",
                (record.id, json.dumps(_immutable(record)), record.owner, record.created_at + ttl_s),
            )
            db.execute("COMMIT")
            created = cur.rowcount == 1
        if created:
            return record, True
        existing = self.get(record.id, with_plan=True)
        assert existing is not None
        return existing, False

    def get(self, job_id: str, with_plan: bool = False) -> JobRecord | None:
        with self._conn() as db:
            row = db.execute(
                "SELECT j.body, j.started_at, j.cancelled_at, j.finished_at, s.done, s.total FROM jobs j "
                "LEFT JOIN training_steps s ON s.job_id = j.id WHERE j.id = ? AND j.expires_at >= ?",
                (job_id, now()),
            ).fetchone()
        if row is None:
            return None
        keys = ("started_at", "cancelled_at", "finished_at", "training_steps_done", "training_steps_total")
        state = {k: v for k, v in zip(keys, row[1:], strict=True) if v is not None}
        return _record(json.loads(row[0]), state, with_plan)

    def entries(self, job_id: str) -> dict[int, dict[str, Any]]:
        with self._conn() as db:
            rows = db.execute("SELECT idx, entry FROM points WHERE job_id = ?", (job_id,)).fetchall()
        return {int(i): json.loads(e) for i, e in rows}

    def mark_started(self, job_id: str) -> None:
        with self._conn() as db:
            db.execute("UPDATE jobs SET started_at = ? WHERE id = ? AND started_at IS NULL", (now(), job_id))

    def set_training_steps(self, job_id: str, done: int, total: int) -> None:
        with self._conn() as db:
            db.execute(
                "INSERT OR REPLACE INTO training_steps (job_id, done, total) VALUES (?, ?, ?)", (job_id, done, total)
            )

    def add_entry(self, job_id: str, index: int, entry: dict[str, Any], ttl_s: int) -> bool:
        with self._conn() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT body, started_at FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                return False
            cur = db.execute(
                "INSERT OR IGNORE INTO points (job_id, idx, entry) VALUES (?, ?, ?)",
                (job_id, index, json.dumps(entry, allow_nan=False)),
            )
            first = cur.rowcount == 1
            (count,) = db.execute("SELECT COUNT(*) FROM points WHERE job_id = ?", (job_id,)).fetchone()
            if first and count >= json.loads(row[0])["total"]:
                t = now()
                db.execute(
                    "UPDATE jobs SET finished_at = COALESCE(finished_at, ?), expires_at = ? WHERE id = ?",
                    (t, t + ttl_s, job_id),
                )
            db.execute("COMMIT")
        if first and count >= json.loads(row[0])["total"]:
            self.stats.job_finished(t - (row[1] or t))
        return first

    def cancel(self, job_id: str, ttl_s: int) -> JobRecord | None:
        record = self.get(job_id)
        if record is None:
            return None
        if JobView(record, self.entries(job_id)).status not in TERMINAL:
            t = now()
            with self._conn() as db:
                db.execute(
                    "UPDATE jobs SET cancelled_at = COALESCE(cancelled_at, ?), expires_at = ? WHERE id = ?",
                    (t, t + ttl_s, job_id),
                )
        return self.get(job_id)

    def delete(self, job_id: str) -> None:
        with self._conn() as db:
            db.execute("DELETE FROM points WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM training_steps WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def unfinished(self, owner: str) -> int:
        with self._conn() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM jobs WHERE owner = ? AND expires_at >= ?", (owner, now()))]
        return sum(1 for i in ids if (v := view(self, i)) is not None and v.status not in TERMINAL)


def make_store(redis_url: str | None, db_path: str) -> JobStore:
    return RedisJobStore(redis_url) if redis_url else SQLiteJobStore(db_path)
