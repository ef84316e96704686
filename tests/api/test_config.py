"""Settings from the environment: defaults, overrides, and no oversubscription."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import service.config
from service.config import ServerSettings, Settings, cgroup_cpu_limit, usable_cpus


def _cores() -> int:
    return usable_cpus()


def test_server_defaults_do_not_oversubscribe():
    s = ServerSettings.from_env({})
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.workers >= 1 and s.torch_threads >= 1
    assert s.workers * s.torch_threads <= _cores()
    assert s.timeout >= 60


@pytest.mark.parametrize(
    ("env", "workers", "threads"),
    [
        ({"WEB_CONCURRENCY": "3", "GRADSTAB_TORCH_THREADS": "2"}, 3, 2),
        ({"GRADSTAB_WORKERS": "2"}, 2, max(1, _cores() // 2)),
        ({"GRADSTAB_TORCH_THREADS": "1"}, _cores(), 1),
    ],
)
def test_workers_and_threads_from_env(env, workers, threads):
    s = ServerSettings.from_env(env)
    assert (s.workers, s.torch_threads) == (workers, threads)


def test_host_port_and_bad_values():
    s = ServerSettings.from_env({"HOST": "0.0.0.0", "PORT": "9001"})
    assert (s.host, s.port) == ("0.0.0.0", 9001)
    with pytest.raises(ValueError, match="PORT"):
        ServerSettings.from_env({"PORT": "eighty"})
    with pytest.raises(ValueError, match="GRADSTAB_ACCESS_LOG"):
        ServerSettings.from_env({"GRADSTAB_ACCESS_LOG": "maybe"})


def test_app_settings_read_limits_from_env():
    s = Settings.from_env(
        {"GRADSTAB_MAX_DEPTH": "50", "GRADSTAB_MAX_BODY_BYTES": "1234", "GRADSTAB_MAX_JSON_DEPTH": "8"}
    )
    assert s.limits.max_depth == 50 and s.limits.max_body_bytes == 1234 and s.max_json_depth == 8


def test_body_limit_is_the_flask_content_length(monkeypatch):
    from service.api.app import create_app

    monkeypatch.setenv("GRADSTAB_MAX_BODY_BYTES", "100")
    app = create_app()
    assert app.config["MAX_CONTENT_LENGTH"] == 100
    resp = app.test_client().post("/v1/analyses", data="{" + " " * 200 + "}", content_type="application/json")
    assert resp.status_code == 413


# --------------------------------------------------------------------------- container CPUs


def _v2(tmp_path: Path, text: str) -> str:
    path = tmp_path / "cpu.max"
    path.write_text(text + "\n")
    return str(path)


def _v1(tmp_path: Path, quota: str, period: str = "100000") -> str:
    folder = tmp_path / "cpu"
    folder.mkdir()
    (folder / "cpu.cfs_quota_us").write_text(quota + "\n")
    (folder / "cpu.cfs_period_us").write_text(period + "\n")
    return str(folder)


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("max 100000", None),  # no limit
        ("max", None),
        ("200000 100000", 2),  # --cpus=2
        ("150000 100000", 2),  # 1.5 CPUs round up
        ("50000 100000", 1),  # 0.5 CPU: still one worker
        ("1000 100000", 1),
        ("400000 200000", 2),  # another period
        ("garbage 100000", None),
        ("", None),
    ],
)
def test_cgroup_v2_cpu_max(tmp_path, text, cpus):
    assert cgroup_cpu_limit(_v2(tmp_path, text), v1_dirs=()) == cpus


@pytest.mark.parametrize(
    ("quota", "period", "cpus"),
    [
        ("-1", "100000", None),
        ("300000", "100000", 3),
        ("250000", "100000", 3),
        ("20000", "100000", 1),
        ("100000", "0", None),
    ],
)
def test_cgroup_v1_cfs_quota(tmp_path, quota, period, cpus):
    missing_v2 = str(tmp_path / "no-cpu.max")
    assert cgroup_cpu_limit(missing_v2, v1_dirs=[str(tmp_path / "absent"), _v1(tmp_path, quota, period)]) == cpus


def test_no_cgroup_files_means_no_limit(tmp_path):
    assert cgroup_cpu_limit(str(tmp_path / "cpu.max"), v1_dirs=[str(tmp_path / "cpu")]) is None


def test_v2_wins_over_v1(tmp_path):
    assert cgroup_cpu_limit(_v2(tmp_path, "100000 100000"), v1_dirs=[_v1(tmp_path, "400000")]) == 1


def test_usable_cpus_is_the_smaller_of_affinity_and_quota(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    one = tmp_path / "one"
    one.mkdir()
    assert usable_cpus(_v2(one, "100000 100000"), v1_dirs=()) == 1
    many = tmp_path / "many"
    many.mkdir()
    assert usable_cpus(_v2(many, f"{100000 * (affinity + 8)} 100000"), v1_dirs=()) == affinity
    assert usable_cpus(str(tmp_path / "absent"), v1_dirs=()) == affinity


@pytest.mark.parametrize("cpus", [1, 2, 3, 4, 6, 16])
def test_defaults_fit_the_cpus(cpus):
    s = ServerSettings.from_env({}, cpus=cpus)
    assert 1 <= s.workers <= 4 and s.torch_threads >= 1
    assert s.workers * s.torch_threads <= cpus
    t = ServerSettings.from_env({"GRADSTAB_TORCH_THREADS": "1"}, cpus=cpus)
    assert (t.workers, t.torch_threads) == (cpus, 1)


def test_from_env_counts_the_container_quota(monkeypatch):
    """A 1-CPU container on a many-core host: one worker with one thread, not min(host cores, 4)."""
    monkeypatch.setattr(service.config, "usable_cpus", lambda: 1)
    s = ServerSettings.from_env({})
    assert (s.workers, s.torch_threads) == (1, 1)
