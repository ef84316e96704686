"""The jobs package's exceptions; service/api/jobs.py maps each to one HTTP problem."""

from __future__ import annotations


class JobError(Exception):
    """Base class."""


class StoreUnavailable(JobError):
    """The job store or queue (Redis) cannot be reached: new jobs are refused (503)."""


class QuotaExceeded(JobError):
    """The caller already has as many unfinished jobs as GRADSTAB_JOB_QUOTA allows (429)."""

    def __init__(self, owner: str, quota: int) -> None:
        super().__init__(
            f"{owner} already has {quota} unfinished jobs, the quota GRADSTAB_JOB_QUOTA={quota}; "
            "wait for one to finish or cancel one (DELETE /v1/jobs/{id})."
        )
        self.owner = owner
        self.quota = quota
