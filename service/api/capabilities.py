"""GET /v1/capabilities: what this server accepts, so clients need not guess."""

from __future__ import annotations

import platform
from dataclasses import fields
from functools import cache
from importlib import metadata
from typing import Any

import service
from schemas.limits import Limits
from schemas.service import CapabilitiesSchema
from service.config import Settings
from service.engine import ENGINE_VERSION
from service.engine.spec import (
    ACTIVATIONS,
    CELLS,
    CHAIN_PRECISIONS,
    DEVICES,
    DTYPES,
    INITS,
    JACOBIAN_METHODS,
    LOSS_AT,
    LOSSES,
    NORM_EPS,
    NORM_KINDS,
    NORM_POSITIONS,
    RECURRENT_INITS,
    RESIDUAL_EVERY,
    RNN_ACTIVATIONS,
)

from .jobs_health import jobs_capabilities
from .smorest import Blueprint
from .state import state


@cache
def cuda_available() -> bool:
    import torch  # asked in a worker, once: never probe CUDA in the gunicorn master (fork)

    return bool(torch.cuda.is_available())


def available_devices() -> list[str]:
    return [d for d in DEVICES if d != "cuda" or cuda_available()]


def gpus() -> list[dict[str, Any]]:
    """The CUDA devices this worker sees: index, name, total memory (MiB) and the device auto runs on."""
    if not cuda_available():
        return []
    import torch

    out = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        out.append(
            {
                "index": index,
                "name": props.name,
                "memory_mib": props.total_memory // 2**20,
                "current": index == torch.cuda.current_device(),
            }
        )
    return out


def _versions() -> dict[str, str]:
    return dict(_installed_versions())


@cache
def _installed_versions() -> dict[str, str]:
    """Fixed for the process's life; importlib.metadata scans site-packages on every call."""
    import torch

    out = {
        "service": service.__version__,
        "engine": ENGINE_VERSION,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    for dist in ("flask", "flask-smorest", "marshmallow", "gunicorn"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:  # pragma: no cover
            out[dist] = "unknown"
    return out


def capabilities(settings: Settings) -> dict[str, Any]:
    limits = settings.limits
    return {
        "activations": list(ACTIVATIONS),
        "inits": list(INITS),
        "dtypes": list(DTYPES),
        "devices": available_devices(),
        "gpus": gpus(),
        "losses": list(LOSSES),
        "jacobian_methods": list(JACOBIAN_METHODS),
        "jacobian_precisions": list(CHAIN_PRECISIONS),
        "architecture": {
            "residual_every": list(RESIDUAL_EVERY),
            "normalization_kinds": list(NORM_KINDS),
            "normalization_positions": list(NORM_POSITIONS),
            "normalization_eps": NORM_EPS,
        },
        "recurrent": {
            "cells": list(CELLS),
            "loss_at": list(LOSS_AT),
            "rnn_activations": list(RNN_ACTIVATIONS),
            "inits": list(RECURRENT_INITS),
        },
        "limits": limits.as_dict(),
        "limit_env": {f.name: Limits.env_name(f.name) for f in fields(limits)},
        "max_json_depth": settings.max_json_depth,
        "versions": _versions(),
    }


def blueprint(settings: Settings) -> Blueprint:
    blp = Blueprint("capabilities", __name__, url_prefix="/v1", description="What this server accepts and runs.")

    @blp.route("/capabilities", methods=["GET"])
    @blp.response(200, CapabilitiesSchema)
    def get_capabilities() -> dict[str, Any]:
        """Activations, inits, dtypes, devices, losses, the limits in force, versions and the job queue.

        What this server accepts (so clients need not guess), the environment variable behind each limit,
        and the job queue's health: backend, live workers, depth, running tasks, task outcomes and the mean
        job run time (workers 0 with REDIS_URL set: jobs wait until a worker starts)."""
        body = capabilities(settings)
        jobs = state().jobs
        if jobs is not None:
            body["jobs"] = jobs_capabilities(jobs)
        return body

    return blp
