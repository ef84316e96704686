"""Run float16 specs and print what the reports say about the dtype's range, as JSON (for kernel-path tests).

Usage: python -m tests.engine.float16_paths THREADS  — run under different ATEN_CPU_CAPABILITY / MKL_CBWR
settings and thread counts; the outputs must be identical.
"""

from __future__ import annotations

import json
import sys

import torch

from schemas import ModelSpecSchema
from service.engine import analyze

SPECS = [
    {"layers": {"depth": 100, "width": 4}, "activation": "identity", "init": "normal", "batch_size": 2},
    {
        "layers": {"depth": 15, "width": 64},
        "activation": "selu",
        "init": "xavier_normal",
        "weight_scale": 1.5,
        "loss": "cross_entropy",
    },
    {"layers": {"depth": 30, "width": 32}, "activation": "sigmoid", "init": "xavier_normal", "weight_scale": 3.0},
    {
        "layers": {"depth": 40, "width": 48},
        "activation": "tanh",
        "init": "xavier_normal",
        "weight_scale": 2.0,
        "batch_size": 16,
    },
    {
        "layers": {"depth": 60, "width": 16},
        "activation": "identity",
        "init": "orthogonal",
        "weight_scale": 0.7,
        "batch_size": 2,
        "input_scale": 1e4,
    },
    {
        "layers": {"depth": 30, "width": 96},
        "activation": "gelu",
        "init": "kaiming_normal",
        "weight_scale": 0.6,
        "loss": "mse",
    },
    {"layers": {"depth": 50, "width": 32}, "activation": "relu", "init": "kaiming_uniform", "weight_scale": 1.3},
]


def summary(body: dict) -> dict:
    # the flags do not read spectral norms or svdvals: leave them out to keep four processes quick
    jacobian = {"method": "exact", "singular_values": "none", "power_iterations": 0}
    spec = ModelSpecSchema().load({**body, "dtype": "float16", "verify_recommendations": False, "jacobian": jacobian})
    r = analyze(spec)
    d = r.diagnosis

    def event(e):
        return {
            "occurred": e.occurred,
            "first_layer": e.first_layer,
            "quantity": e.quantity,
            "by_quantity": {k: [v.first_layer, v.layer_count, v.max_fraction] for k, v in e.by_quantity.items()},
        }

    return {
        "overflow": event(d.overflow),
        "underflow": event(d.underflow),
        "cancellation": event(d.cancellation),
        "layers": [
            [g.zero_fraction, g.subnormal_fraction, g.nonfinite_fraction, g.norm]
            for lr in r.layers
            for g in (lr.output_grad, lr.weight_grad)
        ],
        "loss": r.loss,
    }


if __name__ == "__main__":
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    print(json.dumps([summary(b) for b in SPECS]))
