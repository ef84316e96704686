"""Kernels per layer of the exact chain, counted on any machine: what bounds a GPU at small widths.

A GPU runs a d=100, n=256 chain's GEMMs in microseconds each, so its time there is the number of kernels it
launches (about 5 µs each) times the layers. This counts the tensor operations that run a kernel (views and
allocations excluded) through torch's dispatcher, per layer, under the CPU's rules (power steps one layer at a
time with the basis carried down; live-unit gathers from 128 units) and under CUDA's (power steps in chunks of
layers, jacobian.CHUNKED_DEVICES; gathers from 1024 units, jacobian.LIVE_MIN_UNITS), and times both here. A
count, not a GPU time: bench/bench_gpu.py measures that where there is one. Cholesky and triangular solves
count once although a GPU library may launch a few kernels for each.

    python bench/bench_launches.py [--threads N]
"""

from __future__ import annotations

import argparse
import collections
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from bench_engine import best_of, chunked_power_on, cpu_args, spec_for
from torch.utils._python_dispatch import TorchDispatchMode

from service.engine import jacobian
from service.engine.jacobian import exact_chain
from service.engine.network import make_parameters
from service.engine.reference import run_reference

CPU = torch.device("cpu")
NO_KERNEL = {"aten::empty", "aten::empty_strided", "aten::empty_like", "aten::detach", "aten::lift_fresh"}


class KernelCount(TorchDispatchMode):
    """Counts every dispatched operation that computes something (not a view, not an allocation)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        name = func._schema.name
        if not func.is_view and name not in NO_KERNEL:
            self.counts[name] += 1
        return func(*args, **(kwargs or {}))


@contextmanager
def rules_of(device: str) -> Iterator[None]:
    """The chain as `device` would run it, here: its power iteration (jacobian.CHUNKED_DEVICES) and where it
    gathers the live units (jacobian.LIVE_MIN_UNITS)."""
    saved = jacobian.LIVE_MIN_UNITS["cpu"]
    jacobian.LIVE_MIN_UNITS["cpu"] = jacobian.LIVE_MIN_UNITS[device]
    try:
        with chunked_power_on(*(["cpu"] if device in jacobian.CHUNKED_DEVICES else [])):
            yield
    finally:
        jacobian.LIVE_MIN_UNITS["cpu"] = saved


def main() -> None:
    cpu_args(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    d, batch = 100, 8
    for n in (64, 256):
        spec = spec_for(d, n, batch, "relu", method="exact", precision="float32", singular_values="none")
        params = make_parameters(spec)
        ref = run_reference(spec, params)
        weights = params.weights_as(torch.float32, CPU)
        row = []
        for name, device in (("CPU's rules", "cpu"), ("CUDA's rules", "cuda")):
            with rules_of(device):
                with KernelCount() as counter:
                    exact_chain(spec, weights, ref, torch.float32, CPU)
                seconds = best_of(lambda s=spec, w=weights, r=ref: exact_chain(s, w, r, torch.float32, CPU), 5)
            per_layer = sum(counter.counts.values()) / (d - 1)
            row.append(f"{name} {per_layer:5.1f} kernels/layer, {seconds * 1e3:6.1f} ms on this CPU")
        print(f"d={d} n={n} B={batch} relu float32 exact chain: " + "; ".join(row), flush=True)


if __name__ == "__main__":
    main()
