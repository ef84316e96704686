"""The CPU's float16 emulation: the same flags on every kernel path, and the flags native float16 gives.

The emulation rounds every quantity a native float16 pass holds once, from float64 arithmetic (network.py),
so its reports cannot depend on the order in which a BLAS kernel sums, the thread count or the instruction
set ATen dispatches to. The first test runs the same specs in fresh processes under different kernel paths
and requires identical reports (flags, first layers, per-layer zero/subnormal/non-finite fractions, norms).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from service.engine.events import reference_log_magnitudes
from service.engine.network import make_parameters, run_pass
from service.engine.reference import run_reference

from .conftest import make_spec
from .float16_paths import SPECS

ROOT = Path(__file__).resolve().parents[2]
KERNEL_PATHS = [
    ("1", {}),
    ("1", {"ATEN_CPU_CAPABILITY": "default"}),  # ATen's scalar kernels instead of AVX2/AVX512
    # two threads split the GEMMs differently; MKL's conditional-numerical-reproducibility path on top
    ("2", {"MKL_CBWR": "COMPATIBLE", "OMP_WAIT_POLICY": "PASSIVE"}),
]


def _run(threads: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "tests.engine.float16_paths", threads],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return out.stdout


def test_float16_reports_are_identical_on_every_kernel_path() -> None:
    outputs = {f"threads={t} {e}": _run(t, e) for t, e in KERNEL_PATHS}
    reference = next(iter(outputs.values()))
    assert json.loads(reference)  # the specs ran
    for name, out in outputs.items():
        assert out == reference, f"{name} differs from {next(iter(outputs))}"


def _flags(spec, result, logs) -> set[tuple[str, str, int]]:
    """(kind, quantity, layer) where more than 1 % and at least 2 values are 0 (exactly non-zero) or inf/NaN."""
    flags = set()
    out_logs, w_logs = logs
    for t in range(spec.depth):
        for name, values, exact in (
            ("output_grad", result.output_grads[t], out_logs[t]),
            ("weight_grad", result.weight_grads[t], w_logs[t]),
        ):
            v = values.double()
            for kind, hit in (("zero", (v == 0) & torch.isfinite(exact)), ("nonfinite", ~torch.isfinite(v))):
                n = int(hit.sum())
                if n >= 2 and n > 0.01 * v.numel():
                    flags.add((kind, name, t + 1))
    return flags


def test_emulated_float16_flags_agree_with_native_cpu_float16() -> None:
    """Native CPU float16 (torch's own half kernels) against the emulation, over every spec.

    They can differ only at float16 rounding boundaries: native CPU kernels round some partial sums or
    products to float16 (values near half the smallest subnormal then flush in one and not the other), so a
    layer whose flushed fraction sits at the flag threshold may flip. Bounded, not required to be zero.
    """
    flags_differ = flags_total = differ = total = 0
    for body in SPECS:
        spec = make_spec(**body, dtype="float16")
        params = make_parameters(spec)
        logs = reference_log_magnitudes(spec, params, run_reference(spec, params))
        emulated = run_pass(spec, params, torch.device("cpu"))
        native = run_pass(spec, params, torch.device("cpu"), emulate_float16=False)
        assert emulated.emulated and not native.emulated
        a_flags, b_flags = _flags(spec, emulated, logs), _flags(spec, native, logs)
        flags_differ += len(a_flags ^ b_flags)
        flags_total += 4 * spec.depth  # (zero, nonfinite) × (output_grad, weight_grad) per layer
        for a, b in zip(
            emulated.output_grads + emulated.weight_grads, native.output_grads + native.weight_grads, strict=True
        ):
            a, b = a.double(), b.double()
            differ += int(((a == 0) != (b == 0)).sum() + (torch.isfinite(a) != torch.isfinite(b)).sum())
            total += a.numel()
    assert flags_differ <= 0.01 * flags_total  # measured here: 1 of 1,300
    assert differ <= 0.005 * total  # measured here: 1101 of 613,600 (0.18 %)
