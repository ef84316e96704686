"""Dead workers' metric files are folded into archives: totals stay, the folder does not grow (item 20)."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import os, sys
os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
reg = CollectorRegistry()
Counter("demo_total", "d", ["k"], registry=reg).labels(k="a").inc(3)
Histogram("demo_seconds", "d", buckets=(1, 10), registry=reg).observe(2)
Gauge("demo_gauge", "d", registry=reg, multiprocess_mode="liveall").set(5)
print(os.getpid())
"""


def _collect(directory: str) -> dict[str, float]:
    from prometheus_client import CollectorRegistry, multiprocess

    reg = CollectorRegistry()
    multiprocess.MultiProcessCollector(reg, path=directory)
    return {f"{s.name}{sorted(s.labels.items())}": s.value for metric in reg.collect() for s in metric.samples}


def test_three_dead_workers_leave_two_archive_files_and_exact_totals(tmp_path):
    from service.metrics_files import archive_dead_worker

    pids = [int(subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True, text=True,
                               check=True).stdout) for _ in range(3)]  # fmt: skip
    assert len(list(tmp_path.glob("*.db"))) == 9
    before = _collect(str(tmp_path))
    for pid in pids:
        archive_dead_worker(tmp_path, pid)
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["counter_archive.db", "histogram_archive.db"]
    after = _collect(str(tmp_path))
    assert after["demo_total[('k', 'a')]"] == before["demo_total[('k', 'a')]"] == 9.0
    assert after["demo_seconds_count[]"] == 3.0 and after["demo_seconds_bucket[('le', '10.0')]"] == 3.0
    assert not any(k.startswith("demo_gauge") for k in after)
