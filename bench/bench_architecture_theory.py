"""Mean-field theory of residual and normalised networks against the measurement, in one table (issue 18).

Prints, per network (depth 12, width 256, batch 16, float32 unless said), the predicted and measured log10 of the
total RMS growth and the theory's error (`theory.architecture`); batchnorm at three weight scales shows that its
rate does not depend on them. tests/engine/test_architecture_theory.py asserts the tolerances.

    python bench/bench_architecture_theory.py
"""

from __future__ import annotations

from schemas import ModelSpecSchema
from service.engine import analyze
from service.engine.report import ArchitectureTheory

CASES = [
    (
        "tanh residual every 1, s=0.5",
        {"activation": "tanh", "architecture": {"residual": {"every": 1, "branch_scale": 0.5}}},
    ),
    (
        "relu residual every 2, s=1",
        {"activation": "relu", "architecture": {"residual": {"every": 2, "branch_scale": 1.0}}},
    ),
    (
        "relu residual every 1, s=1",
        {"activation": "relu", "architecture": {"residual": {"every": 1, "branch_scale": 1.0}}},
    ),
    (
        "relu pre-LN residual every 2",
        {
            "activation": "relu",
            "architecture": {"residual": {"every": 2}, "normalization": {"kind": "layernorm", "position": "pre"}},
        },
    ),
    (
        "relu post-LN residual every 2",
        {
            "activation": "relu",
            "loss": "cross_entropy",
            "architecture": {"residual": {"every": 2}, "normalization": {"kind": "layernorm", "position": "post"}},
        },
    ),
    (
        "tanh post-LN plain",
        {
            "activation": "tanh",
            "loss": "cross_entropy",
            "architecture": {"normalization": {"kind": "layernorm", "position": "post"}},
        },
    ),
    (
        "tanh pre-RMSNorm plain",
        {"activation": "tanh", "architecture": {"normalization": {"kind": "rmsnorm", "position": "pre"}}},
    ),
]


def _row(name: str, th: ArchitectureTheory | None) -> None:
    assert th is not None
    predicted, measured, error = th.predicted_log10_total_growth, th.measured_log10_total_growth, th.log10_error
    print(f"| {name} | {predicted:.3f} | {measured:.3f} | {error:+.3f} |")


def main() -> None:
    print("| network | predicted log10 | measured | error |")
    print("|---|---|---|---|")
    for name, body in CASES:
        r = analyze(
            ModelSpecSchema().load(
                {"layers": {"depth": 12, "width": 256}, "batch_size": 16, "verify_recommendations": False, **body}
            )
        )
        _row(name, r.theory.architecture)
    for scale in (0.5, 1.0, 3.0):
        r = analyze(
            ModelSpecSchema().load(
                {
                    "layers": {"depth": 8, "width": 256},
                    "batch_size": 64,
                    "weight_scale": scale,
                    "verify_recommendations": False,
                    "jacobian": {"method": "estimate", "probes": 64, "power_iterations": 0},
                    "architecture": {"normalization": {"kind": "batchnorm", "position": "pre"}},
                }
            )
        )
        _row(f"relu batchnorm pre, weight_scale {scale}, B=64", r.theory.architecture)


if __name__ == "__main__":
    main()
