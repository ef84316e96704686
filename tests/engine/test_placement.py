"""Item 1 of issue 23 on the CPU: with the GPU's rules forced here (placement.RESIDENT_DEVICES, as the chunked power
iteration's are: conftest.chunked_power_here), every stage of a plain analysis reads the host a fixed number of
times whatever the depth, and no stage but the weight draws creates a tensor on the host; the resident path's
numbers are the CPU path's. On a CUDA machine the same checks run there, and check the device of every tensor."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from service.engine import analyze, placement
from service.engine.layerstats import sigma_prime_stats, weight_norms
from service.engine.network import make_parameters
from service.engine.reference import run_reference

from .conftest import chunked_power_here, make_spec
from .host_traffic import host_traffic

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=[needs_cuda, pytest.mark.cuda])]
DRAWS = "make_parameters"  # the one host-side stage a CUDA analysis keeps (and the final copy of the numbers)
PLAIN = [
    {"activation": "relu"},
    {"activation": "tanh", "learning_rate": 0.1, "dtype": "float16"},
    {"activation": "sigmoid", "jacobian": {"singular_values": "all"}, "loss": "cross_entropy"},
    {"activation": "gelu", "jacobian": {"method": "estimate"}, "bias": True, "loss": "mse"},
]
BLOCKS = [
    {"residual": {"every": 2, "branch_scale": 0.5}, "normalization": {"kind": "layernorm", "position": "pre"}},
    {"normalization": {"kind": "batchnorm", "position": "post"}},
]


@pytest.fixture
def gpu_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(placement, "RESIDENT_DEVICES", frozenset({"cpu", "cuda"}))
    chunked_power_here(monkeypatch)


def _traffic(device: str, depth: int, body: dict):
    spec = make_spec(layers={"depth": depth, "width": 24}, device=device, **body)
    analyze(spec)  # the process-wide caches (critical points, quadrature) filled first: constants, not stages
    with host_traffic() as mode:
        analyze(spec)
    return mode


@pytest.mark.parametrize("body", PLAIN, ids=["relu", "tanh-f16-lr", "sigmoid-svall-ce", "gelu-estimate-bias"])
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.usefixtures("gpu_rules")
def test_every_plain_stage_reads_the_host_a_fixed_number_of_times(device: str, body: dict) -> None:
    shallow, deep = _traffic(device, 6, body), _traffic(device, 18, body)
    stages = set(shallow.reads) | set(deep.reads)
    per_stage = {s: (shallow.reads[s], deep.reads[s]) for s in stages - {DRAWS}}
    assert all(a == b for a, b in per_stage.values()), per_stage  # none grows with the depth
    assert max(b for _, b in per_stage.values()) <= 6, per_stage
    for mode in (shallow, deep):
        assert set(mode.host_created) <= {DRAWS}, dict(mode.host_created)
        if device == "cuda":  # every tensor a stage after the draws made is on the GPU
            assert all(set(c) == {"cuda"} for s, c in mode.devices.items() if s not in (DRAWS, "other")), mode.devices


@pytest.mark.parametrize("arch", BLOCKS, ids=["res-ln-pre", "bn-post"])
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.usefixtures("gpu_rules")
def test_block_stages_create_nothing_on_the_host(device: str, arch: dict) -> None:
    """The block path runs on the device too; it still reads one scalar per operation (blockref's log scales are
    Python floats), which this test does not claim to have removed."""
    mode = _traffic(device, 8, {"architecture": arch, "loss": "mse"})
    assert set(mode.host_created) <= {DRAWS}, dict(mode.host_created)
    if device == "cuda":
        assert all(set(c) == {"cuda"} for s, c in mode.devices.items() if s not in (DRAWS, "other")), mode.devices


@pytest.mark.parametrize("body", PLAIN + [{"architecture": a, "loss": "mse"} for a in BLOCKS])
def test_the_resident_path_gives_the_cpu_paths_report(monkeypatch: pytest.MonkeyPatch, body: dict) -> None:
    spec = make_spec(layers={"depth": 12, "width": 32}, **body)
    cpu = dataclasses.asdict(analyze(spec))
    monkeypatch.setattr(placement, "RESIDENT_DEVICES", frozenset({"cpu"}))
    forced = dataclasses.asdict(analyze(spec))
    for rep in (cpu, forced):
        rep.pop("runtime")
    assert _close(forced, cpu)


def _close(a: object, b: object) -> bool:
    """Equal structure; floats equal to 1e-12 relative (the batched reductions may sum in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys()
        return all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b)
        return all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15, nan_ok=True)
        return True
    assert a == b
    return True


def test_sigma_prime_stats_and_weight_norms_match_the_per_layer_reads() -> None:
    """layerstats against the formulas _layer_reports applies one layer at a time on the CPU."""
    spec = make_spec(layers=[16, 24, 24, 8, 12], activation=["relu", "tanh", "sigmoid", "leaky_relu"])
    params = make_parameters(spec)
    ref = run_reference(spec, params)
    for lr, s, name in zip(ref.layers, sigma_prime_stats(spec, ref), spec.activations, strict=True):
        sp = lr.sigma_prime
        assert (s.mean, s.max, s.mean_square) == pytest.approx(
            (float(sp.mean()), float(sp.max()), float((sp * sp).mean())), rel=1e-14
        )
        assert (s.dead_fraction is not None) == (name == "relu")
        if name == "relu":
            assert s.dead_fraction == float((sp == 0).double().mean())
        if name in ("tanh", "sigmoid"):
            peak = 1.0 if name == "tanh" else 0.25
            assert s.saturated_fraction == float((sp.abs() < 0.01 * peak).double().mean())
    norms = weight_norms(params.compact_weights)
    assert norms == pytest.approx([float(torch.linalg.vector_norm(w)) for w in params.weights], rel=1e-14)
