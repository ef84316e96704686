"""GET /livez (the process answers) and GET /readyz (this worker has run its warm-up)."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from flask import Flask

from schemas.jsonio import dumps
from schemas.service import HealthSchema
from schemas.spec import ModelSpecSchema
from service.config import Settings

from .capabilities import cuda_available
from .errors import ProblemError
from .smorest import Blueprint
from .state import ServiceState, state

log = logging.getLogger("service.api")

# Small enough to take milliseconds, rich enough to touch every code path a request does.
WARM_UP_SPEC: dict[str, Any] = {"layers": [8, 8, 8, 8], "activation": "tanh", "batch_size": 4}
WARM_UP_SPEC_CUDA: dict[str, Any] = {**WARM_UP_SPEC, "device": "cuda", "verify_recommendations": False}


def warm_up(app: Flask) -> bool:
    """Run one tiny analysis through schema, engine and encoder (past the cache); mark this process ready."""
    st: ServiceState = app.extensions["gradstab"]
    started = time.perf_counter()
    try:
        with app.app_context():
            spec = ModelSpecSchema(limits=st.settings.limits).load(WARM_UP_SPEC)
            dumps(st.reports.compute(spec))
            if cuda_available():  # the CUDA context, cuBLAS handles and kernels load here, not in a request
                dumps(st.reports.compute(ModelSpecSchema(limits=st.settings.limits).load(WARM_UP_SPEC_CUDA)))
    except Exception as exc:  # readiness reports it; the worker keeps serving livez
        st.warm_up_error = f"{type(exc).__name__}: {exc}"
        log.exception("warm-up failed")
        return False
    st.warm_up_ms = round((time.perf_counter() - started) * 1000.0, 3)
    st.warm_up_error = None
    st.ready = True
    log.info("warm-up done", extra={"warm_up_ms": st.warm_up_ms})
    return True


def blueprint(settings: Settings) -> Blueprint:
    blp = Blueprint("health", __name__, description="Liveness and readiness probes.")

    @blp.route("/livez", methods=["GET"])
    @blp.response(200, HealthSchema)
    def livez() -> dict[str, Any]:
        """The process answers HTTP (no torch work).

        For liveness probes: 200 whenever the worker that answers can serve a request, before and after its
        warm-up. Under load every sync worker may be busy; GRADSTAB_PROBE_PORT's /livez, answered by the
        gunicorn master, is not queued behind analyses."""
        return {"status": "ok", "pid": os.getpid(), "warm_up_ms": state().warm_up_ms}

    @blp.route("/readyz", methods=["GET"])
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    def readyz() -> dict[str, Any]:
        """200 once this worker has run its warm-up analysis, 503 before.

        For readiness probes and load balancers: a worker is ready after one tiny analysis has gone through
        the schema, the engine and the encoder (and CUDA, where present). It says nothing about the job
        queue's workers: GET /v1/capabilities (jobs) does."""
        st = state()
        if not st.ready:
            detail = "This worker has not finished its warm-up analysis."
            if st.warm_up_error:
                detail = f"The warm-up analysis failed: {st.warm_up_error}"
            raise ProblemError(503, "not_ready", detail, title="Not ready")
        return {"status": "ready", "pid": os.getpid(), "warm_up_ms": st.warm_up_ms}

    return blp
