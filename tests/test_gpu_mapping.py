"""Workers and GPUs: GRADSTAB_GPUS spreads gunicorn's workers over the GPUs, set before torch loads."""

from __future__ import annotations

from service.config import ServerSettings, gpu_for_worker


def test_workers_take_the_gpus_in_turn() -> None:
    assert [gpu_for_worker(age, 2) for age in range(1, 7)] == [0, 1, 0, 1, 0, 1]
    assert [gpu_for_worker(age, 1) for age in range(1, 4)] == [0, 0, 0]


def test_gpus_default_leaves_cuda_visible_devices_alone() -> None:
    assert ServerSettings.from_env({}, cpus=2).gpus == 0
    assert ServerSettings.from_env({"GRADSTAB_GPUS": "4"}, cpus=2).gpus == 4
