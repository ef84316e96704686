"""Spectral norms of the exact method's power iteration against a converged one (60 steps per layer): the worst
and mean error in log10 σ_max per activation, for 1 and 2 steps per layer, with the CPU's carried iteration and
the GPU's chunked one (run here on the CPU: the same arithmetic). Accuracy, not time.

--sweep: the default analysis's spectral norms (power_iterations 1, the chain's auto precision) against svdvals of
the products formed in float64 from the reference, over every activation × {orthogonal, xavier_normal,
kaiming_normal} × input_scale {1, 10}: the worst and mean shortfall per spec and over all (the documented bound).

    python bench/bench_power_accuracy.py [--depth 60] [--width 128] [--batch 4]
    python bench/bench_power_accuracy.py --sweep [--depth 30] [--width 256] [--batch 4]
"""

from __future__ import annotations

import argparse
import dataclasses

import torch
from bench_engine import chunked_power_on

from service.engine.analysis import chain_precision
from service.engine.jacobian import exact_chain
from service.engine.network import make_parameters
from service.engine.reference import run_reference
from service.engine.spec import ACTIVATIONS, JacobianOptions, ModelSpec

CPU = torch.device("cpu")
CASES = (("relu", "kaiming_normal"), ("tanh", "xavier_normal"), ("sigmoid", "xavier_normal"))


def spectral_norms(spec: ModelSpec, steps: int, chunked: bool = False) -> torch.Tensor:
    params = make_parameters(spec)
    ref = run_reference(spec, params)
    spec = dataclasses.replace(spec, jacobian=dataclasses.replace(spec.jacobian, power_iterations=steps))
    with torch.no_grad(), chunked_power_on(*(["cpu"] if chunked else [])):
        stats = exact_chain(spec, params.weights_as(torch.float64, CPU), ref, torch.float64, CPU).stats
    return torch.tensor([s.log10_spectral_norm for s in stats[:-1]])


def shortfalls(spec: ModelSpec) -> torch.Tensor:
    """log10 σ_max (svdvals of the product formed in float64) − the chain's power-iteration value, per layer."""
    params = make_parameters(spec)
    ref = run_reference(spec, params)
    prec, _ = chain_precision(spec, "exact")
    with torch.no_grad():
        stats = exact_chain(spec, params.weights_as(prec, CPU), ref, prec, CPU).stats
    prod, out = None, []
    for t in range(spec.depth, 1, -1):
        jac = ref.layers[t - 1].sigma_prime[:, :, None] * params.weights[t - 1][None]  # (B, n_t, n_{t-1})
        prod = jac if prod is None else torch.bmm(prod, jac)
        true = float(torch.log10(torch.linalg.svdvals(prod)[:, 0]).mean())
        out.append(true - stats[t - 2].log10_spectral_norm)
    return torch.tensor(out)


def sweep(depth: int, width: int, batch: int) -> None:
    worst = []
    for activation in ACTIVATIONS:
        for init in ("orthogonal", "xavier_normal", "kaiming_normal"):
            for input_scale in (1.0, 10.0):
                spec = ModelSpec(
                    widths=(width,) * (depth + 1),
                    activations=(activation,) * depth,
                    init=init,
                    input_scale=input_scale,
                    batch_size=batch,
                    verify_recommendations=False,
                    jacobian=JacobianOptions(method="exact", singular_values="none"),
                )
                err = shortfalls(spec)
                worst.append(float(err.max()))
                print(
                    f"{activation:10s} {init:14s} input_scale {input_scale:4g}: worst shortfall {err.max():.1e}, "
                    f"mean {err.mean():.1e}, below 0: {int((err < -1e-6).sum())} layers"
                )
    print(
        f"over {len(worst)} specs (d={depth}, n={width}, B={batch}): worst {max(worst):.3f}, median of the worst "
        f"{sorted(worst)[len(worst) // 2]:.1e}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depth", type=int, default=None)
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--sweep", action="store_true")
    args = ap.parse_args()
    if args.sweep:
        sweep(args.depth or 30, args.width or 256, args.batch)
        return
    args.depth, args.width = args.depth or 60, args.width or 128
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
