"""Spectral norms of the exact method's power iteration against a converged one (60 steps per layer): the worst
and mean error in log10 σ_max per activation, for 1 and 2 steps per layer, with the CPU's carried iteration and
the GPU's chunked one (run here on the CPU: the same arithmetic). Accuracy, not time.

    python bench/bench_power_accuracy.py [--depth 60] [--width 128] [--batch 4]
"""

from __future__ import annotations

import argparse
import dataclasses

import torch
from bench_engine import chunked_power_on

from service.engine.jacobian import exact_chain
from service.engine.network import make_parameters
from service.engine.reference import run_reference
from service.engine.spec import JacobianOptions, ModelSpec

CPU = torch.device("cpu")
CASES = (("relu", "kaiming_normal"), ("tanh", "xavier_normal"), ("sigmoid", "xavier_normal"))


def spectral_norms(spec: ModelSpec, steps: int, chunked: bool = False) -> torch.Tensor:
    params = make_parameters(spec)
    ref = run_reference(spec, params)
    spec = dataclasses.replace(spec, jacobian=dataclasses.replace(spec.jacobian, power_iterations=steps))
    with torch.no_grad(), chunked_power_on(*(["cpu"] if chunked else [])):
        stats = exact_chain(spec, params.weights_as(torch.float64, CPU), ref, torch.float64, CPU).stats
    return torch.tensor([s.log10_spectral_norm for s in stats[:-1]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depth", type=int, default=60)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    for activation, init in CASES:
        spec = ModelSpec(
            widths=(args.width,) * (args.depth + 1),
            activations=(activation,) * args.depth,
            init=init,
            batch_size=args.batch,
            verify_recommendations=False,
            jacobian=JacobianOptions(method="exact", precision="float64", singular_values="none"),
        )
        converged = spectral_norms(spec, 60)
        for steps, chunked in ((1, False), (2, False), (1, True), (2, True)):
            err = spectral_norms(spec, steps, chunked) - converged
            print(
                f"{activation:8s} {'chunked' if chunked else 'carried'} {steps} step(s)/layer: worst |Δlog10 σ_max| "
                f"{err.abs().max():.1e}, mean {err.mean():.1e} (d={args.depth}, n={args.width}, B={args.batch})"
            )


if __name__ == "__main__":
    main()
