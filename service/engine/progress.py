"""Where a long stage reports how far it is, without the engine taking a callback through every call: the job
runner (service/jobs/runner.py) sets `training_steps` around one analysis and the training probe calls it after each
step. Stdlib only: the job modules import it in processes that never load torch."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

# progress(done, total) of the spec's own training probe (not of the recommendation reruns' probes)
training_steps: ContextVar[Callable[[int, int], None] | None] = ContextVar("training_steps", default=None)
