"""Per-request work limits: the schemas refuse a spec beyond them with a 4xx naming the limit.

Each limit has a default and an environment variable (read by `Limits.from_env`), so an
operator can raise or lower them without code changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

ENV_PREFIX = "GRADSTAB_"


@dataclass(frozen=True)
class Limits:
    max_depth: int = 2000
    max_width: int = 8192
    max_batch_size: int = 1024
    max_parameters: int = 64_000_000
    max_gflop: float = 5000.0  # estimated GEMM-equivalent work of the whole analysis (CPU: ~60 s on one core)
    max_memory_mib: float = 3584.0  # estimated peak tensor memory of the analysis
    auto_exact_gflop: float = 20.0  # jacobian.method=auto picks exact up to this much chain work
    max_probes: int = 256
    max_power_iterations: int = 100
    max_body_bytes: int = 1_000_000

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Limits:
        """Limits from GRADSTAB_MAX_DEPTH etc.; unset variables keep the defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, float | int] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            kind = int if f.type in ("int", int) else float
            try:
                values[f.name] = kind(raw)
            except ValueError as exc:
                raise ValueError(f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not a {kind.__name__}") from exc
        return cls(**values)

    @staticmethod
    def env_name(name: str) -> str:
        return ENV_PREFIX + name.upper()

    def as_dict(self) -> dict[str, float | int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
