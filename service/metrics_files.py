"""The Prometheus multiprocess folder stays as large as the live workers, not the history of them
(issue 13, item 20).

Each gunicorn worker writes its samples to `<type>_<pid>.db` files in PROMETHEUS_MULTIPROC_DIR;
prometheus_client's `mark_process_dead` removes only a dead worker's live-gauge files, so every
recycled worker left its counter and histogram files behind (5,042 files: /metrics took 1 s). Here the
master, when a worker exits, adds that worker's counters and histogram buckets into one
`counter_archive.db` / `histogram_archive.db` (totals stay exact: counters only grow) and deletes its
files; gauges of a dead worker (max/min/all modes) are dropped, the live workers report their own.
Runs in the gunicorn master (stdlib and prometheus_client only).
"""

from __future__ import annotations

from pathlib import Path

ARCHIVED = ("counter", "histogram")


def archive_dead_worker(directory: str | Path, pid: int) -> int:
    """Fold a dead worker's sample files into the archives and delete them; the files removed."""
    from prometheus_client import multiprocess
    from prometheus_client.mmap_dict import MmapedDict

    folder = Path(directory)
    multiprocess.mark_process_dead(pid, str(folder))
    removed = 0
    for path in folder.glob(f"*_{pid}.db"):
        kind = path.name.split("_", 1)[0]
        if kind in ARCHIVED:
            archive = MmapedDict(str(folder / f"{kind}_archive.db"))
            try:
                for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(str(path)):
                    total, _ = archive.read_value(key)
                    archive.write_value(key, total + value, timestamp)
            finally:
                archive.close()
        path.unlink(missing_ok=True)
        removed += 1
    return removed
