"""One recurrent analysis against one forward+backward of the same torch.nn module, in the same run.

For each case: torch.nn.RNN/LSTM/GRU (float32, the analysis's own weights and inputs, ℓ = Σ h_T) forward and
backward, best of 3; then one analysis without the recommendation reruns and one with them (the default). The
ratio is what the diagnosis costs over the training step it diagnoses: the pass in the dtype, the float64
reference, the product through every step, the exact loss walk, statistics and theory (and the reruns).

    python bench/bench_recurrent.py [--threads N] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
from bench_engine import cpu_args

from service.engine import analyze
from service.engine.recurrent import make_recurrent_parameters, torch_module
from service.engine.spec import ModelSpec, Recurrent, recurrent_widths

# cell, steps, hidden, batch
CASES = [("rnn", 1000, 256, 8), ("lstm", 1000, 256, 8), ("gru", 1000, 256, 8), ("rnn", 200, 64, 8)]
QUICK = [("rnn", 100, 32, 4), ("lstm", 100, 32, 4)]


def _spec(cell: str, steps: int, hidden: int, batch: int) -> ModelSpec:
    rec = Recurrent(cell=cell, steps=steps, hidden=hidden)
    return ModelSpec(widths=recurrent_widths(rec), activations=("tanh",) * steps, recurrent=rec, batch_size=batch)


def _module_step(spec: ModelSpec) -> float:
    """Seconds of one forward+backward of the torch.nn module with the spec's weights (best of 3)."""
    params = make_recurrent_parameters(spec)
    mod = torch_module(spec, params, torch.float32)
    x = params.x.float()
    best = float("inf")
    for _ in range(3):
        mod.zero_grad()
        start = time.perf_counter()
        out, _ = mod(x)
        out[-1].sum().backward()
        best = min(best, time.perf_counter() - start)
    return best


def _analysis(spec: ModelSpec) -> tuple[float, str]:
    start = time.perf_counter()
    rep = analyze(spec)
    return time.perf_counter() - start, rep.runtime.jacobian_method


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="toy sizes (a few seconds)")
    args = cpu_args(ap)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for cell, steps, hidden, batch in QUICK if args.quick else CASES:
        spec = _spec(cell, steps, hidden, batch)
        step = _module_step(spec)
        bare, method = _analysis(dataclasses.replace(spec, verify_recommendations=False))
        full, _ = _analysis(spec)
        print(
            f"{cell:4s} T={steps:4d} hidden={hidden:4d} B={batch}: torch.nn forward+backward {step * 1e3:8.1f} ms; "
            f"analysis ({method}) {bare:6.2f} s = {bare / step:6.0f}x, with reruns {full:6.2f} s = {full / step:6.0f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
