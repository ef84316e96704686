"""Where an analysis's stages keep their tensors, and how often they read the host.

On a device listed in RESIDENT_DEVICES (a GPU) every stage after the weight draws runs on the spec's device: the
draws are moved there once (`Parameters.on`), the float64 reference, the gradient statistics and their masks, the
range events and the theory's per-layer χ follow their inputs, and each stage reads the host once (or once per
group of equal-width layers), never once per layer: each read of a GPU value waits for everything queued before
it. Elsewhere (the CPU) the stages keep their per-layer scalar reads, which cost nothing there and measured faster
than the batched forms; their numbers are the ones the report ids pin.

Tests force these rules on the CPU (monkeypatch RESIDENT_DEVICES) and count the host reads of every stage
(tests/engine/test_placement.py), as the chunked power iteration's rules are forced (jacobian.CHUNKED_DEVICES).
"""

from __future__ import annotations

import torch

RESIDENT_DEVICES = frozenset({"cuda"})
# What analysis.analyze calls, in order, by the names it looks them up under (module globals of analysis):
# bench/bench_engine.py times each, tests/engine/host_traffic.py counts each one's host reads.
STAGES = (
    "make_parameters",
    "run_pass",
    "run_reference",
    "check_reference",
    "exact_chain",
    "estimate_chain",
    "_resolve_singular_values",
    "_layer_reports",
    "range_events",
    "theory",
    # residual/normalised networks (issue 18)
    "run_block_pass",
    "run_block_reference",
    "block_chain",
    "exact_gradients",
    "architecture_theory",
)


def resident(device: torch.device) -> bool:
    """True where every stage keeps its tensors on `device` and reads the host once per stage."""
    return device.type in RESIDENT_DEVICES
