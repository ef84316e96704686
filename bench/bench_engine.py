"""Engine benchmark: prints ratios measured in the same run (never pass/fail on time).

For each case (depth d, width n, batch B, activation; float32 pass on the CPU) it prints
- the engine's Jacobian work and whole analysis as multiples of one bare forward+backward,
- the product chain's GFLOP/s as a fraction of a large torch.mm in the same precision, this run,
- the exact method against the bare chain (GEMMs and scaling only),
- naive autograd (torch.autograd.functional.jacobian per layer and sample; timed on a few
  layers of one sample and extrapolated by its cost model, said so in the output),
- torch.func's best (vmap over jacrev w.r.t. zero perturbations at every layer, as a tuple),
- the estimate method: time and its worst error against exact.

    python bench/bench_engine.py [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch.func import jacrev, vmap

from service.engine import analysis, analyze, jacobian
from service.engine.activations import get as get_activation
from service.engine.draws import set_cache_mib
from service.engine.estimate import estimate_chain
from service.engine.jacobian import exact_chain
from service.engine.network import make_parameters
from service.engine.placement import STAGES
from service.engine.reference import run_reference
from service.engine.spec import JacobianOptions, ModelSpec

PREC = {"float32": torch.float32, "float64": torch.float64}
CPU = torch.device("cpu")


def cpu_args(ap: argparse.ArgumentParser) -> argparse.Namespace:
    """The CPU benchmarks' common options: --threads N (torch's intra-op threads). Parses them, applies them and
    turns the draw cache off, so that every analysis draws its weights, as for a network the worker has not seen."""
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    set_cache_mib(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


@contextmanager
def stage_times(sync: Callable[[], None] = lambda: None) -> Iterator[dict[str, float]]:
    """Seconds per stage of the analyses run inside, summed, with the device drained around each stage (`sync`).
    A recommendation rerun's stages count in `diagnose`, which calls it."""
    times: dict[str, float] = {}
    depth = [0]

    def timed(name: str, fn: Callable[..., object]) -> Callable[..., object]:
        def run(*args: object, **kwargs: object) -> object:
            if depth[0]:
                return fn(*args, **kwargs)
            depth[0] += 1
            sync()
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                sync()
                times[name] = times.get(name, 0.0) + time.perf_counter() - start
                depth[0] -= 1

        return run

    targets = [(analysis, name) for name in STAGES] + [(analysis.diagnosis_mod, "diagnose")]
    saved = [getattr(mod, name) for mod, name in targets]
    for (mod, name), fn in zip(targets, saved, strict=True):
        setattr(mod, name, timed(name, fn))
    try:
        yield times
    finally:
        for (mod, name), fn in zip(targets, saved, strict=True):
            setattr(mod, name, fn)


@contextmanager
def chunked_power_on(*devices: str) -> Iterator[None]:
    """The exact chain's power steps in chunks of layers on `devices` (jacobian.CHUNKED_DEVICES; none: one step
    per layer, the basis carried down, everywhere), for what runs inside."""
    saved = jacobian.CHUNKED_DEVICES
    jacobian.CHUNKED_DEVICES = frozenset(devices)
    try:
        yield
    finally:
        jacobian.CHUNKED_DEVICES = saved


def format_stages(times: dict[str, float], total: float) -> str:
    shown = ", ".join(f"{name.strip('_')} {sec * 1e3:.0f}" for name, sec in times.items())
    return f"{shown}, other {(total - sum(times.values())) * 1e3:.0f} (ms)"


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def mm_gflops(dtype: torch.dtype, n: int = 2048) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return 2 * n**3 / best_of(lambda: a @ b) / 1e9


def spec_for(d: int, n: int, batch: int, act: str, **jac: object) -> ModelSpec:
    init = "kaiming_normal" if act == "relu" else "xavier_normal"
    return ModelSpec(
        widths=(n,) * (d + 1),
        activations=(act,) * d,
        init=init,
        batch_size=batch,
        verify_recommendations=False,
        jacobian=JacobianOptions(**jac),  # type: ignore[arg-type]
    )


def forward_backward(spec: ModelSpec) -> Callable[[], None]:
    params = make_parameters(spec)
    ws = [w.float().requires_grad_(True) for w in params.weights]
    x = params.x.float()
    fn = get_activation(spec.activations[0]).fn

    def run() -> None:
        h = x
        for w in ws:
            h = fn(h @ w.T)
        h.sum().backward()

    return run


def bare_chain(spec: ModelSpec, prec: torch.dtype) -> Callable[[], None]:
    params = make_parameters(spec)
    ref = run_reference(spec, params)
    ws = [w.to(prec) for w in params.weights]
    sps = [lr.sigma_prime.to(prec) for lr in ref.layers]
    n, batch = spec.widths[-1], spec.batch_size

    def run() -> None:
        # the minimal correct chain: σ' scaling, one GEMM, renormalisation (without it sigmoid products
        # sink into subnormals, where the CPU is 30× slower, and deep ones overflow)
        p = torch.eye(n, dtype=prec).expand(batch, n, n).contiguous()
        fro = torch.ones(batch, dtype=prec)
        for t in range(spec.depth, 1, -1):
            p = ((p * (sps[t - 1] / fro[:, None])[:, None, :]).reshape(batch * n, n) @ ws[t - 1]).reshape(batch, n, n)
            fro = torch.linalg.vector_norm(p.reshape(batch, -1), dim=1)

    return run


def func_best(spec: ModelSpec) -> Callable[[], None]:
    params = make_parameters(spec)
    ws = [w.float() for w in params.weights]
    fn = get_activation(spec.activations[0]).fn
    deltas = tuple(torch.zeros(n) for n in spec.widths[1:])

    def top(ds: tuple[torch.Tensor, ...], x: torch.Tensor) -> torch.Tensor:
        h = x
        for w, dlt in zip(ws, ds, strict=True):
            h = fn(w @ h) + dlt
        return h

    jac = vmap(jacrev(top, argnums=0), in_dims=(None, 0))
    x = params.x.float()
    return lambda: jac(deltas, x)


def naive_seconds(spec: ModelSpec, layers_timed: int = 3) -> tuple[float, str]:
    """autograd.functional.jacobian of h^d w.r.t. h^t, per layer and sample: timed on a few layers, extrapolated."""
    params = make_parameters(spec)
    ws = [w.float() for w in params.weights]
    fn = get_activation(spec.activations[0]).fn
    x = params.x[0].float()
    hs = [x]
    for w in ws:
        hs.append(fn(w @ hs[-1]))
    d = spec.depth
    picks = sorted({max(1, d - 2), max(1, d // 2), 1})[:layers_timed]
    per_len = []
    for t in picks:

        def f(h: torch.Tensor, t: int = t) -> torch.Tensor:
            for w in ws[t:]:
                h = fn(w @ h)
            return h

        start = time.perf_counter()
        torch.autograd.functional.jacobian(f, hs[t])
        per_len.append((time.perf_counter() - start) / max(d - t, 1))
    per_unit = sum(per_len) / len(per_len)  # cost ∝ layers traversed (d - t): n_d backward passes each
    total = per_unit * sum(d - t for t in range(1, d + 1)) * spec.batch_size
    return total, f"extrapolated from layers {picks} of sample 0"


def case(d: int, n: int, batch: int, act: str, quick: bool) -> None:
    print(f"\n## d={d}, n={n}, batch={batch}, {act}, float32 pass, CPU, {torch.get_num_threads()} threads")
    base = spec_for(d, n, batch, act)
    fb = best_of(forward_backward(base))
    chain_flops = 2.0 * batch * n**3 * (d - 1)
    print(f"forward+backward: {fb * 1e3:.1f} ms")
    for pname, prec in PREC.items():
        mm = mm_gflops(prec)
        bare = best_of(bare_chain(base, prec))
        spec = spec_for(d, n, batch, act, method="exact", precision=pname, singular_values="none")
        params = make_parameters(spec)
        ref = run_reference(spec, params)
        exact = best_of(
            lambda spec=spec, params=params, ref=ref, prec=prec: exact_chain(
                spec, params.weights_as(prec, CPU), ref, prec, CPU
            )
        )
        spec_auto = dataclasses.replace(spec, jacobian=dataclasses.replace(spec.jacobian, singular_values="auto"))
        whole = best_of(lambda spec_auto=spec_auto: analyze(spec_auto), repeat=1 if quick else 2)
        print(
            f"[{pname} chain] torch.mm {mm:.1f} GFLOP/s; bare chain {bare * 1e3:.0f} ms = "
            f"{chain_flops / bare / 1e9:.1f} GFLOP/s ({chain_flops / bare / 1e9 / mm:.2f} of mm); "
            f"exact method (Frobenius+spectral+rank, all layers) {exact * 1e3:.0f} ms = "
            f"{exact / bare:.2f}x bare chain, {exact / fb:.1f}x fwd+bwd; "
            f"whole analysis with auto σ_min {whole * 1e3:.0f} ms = {whole / fb:.1f}x fwd+bwd"
        )
    fb_ms = fb * 1e3
    spec32 = spec_for(d, n, batch, act, method="exact", precision="float32", singular_values="none")
    p32 = make_parameters(spec32)
    r32 = run_reference(spec32, p32)
    exact32 = best_of(
        lambda: exact_chain(spec32, p32.weights_as(torch.float32, CPU), r32, torch.float32, torch.device("cpu"))
    )
    frob32 = dataclasses.replace(spec32, jacobian=dataclasses.replace(spec32.jacobian, power_iterations=0))
    exact_frob = best_of(
        lambda: exact_chain(frob32, p32.weights_as(torch.float32, CPU), r32, torch.float32, torch.device("cpu"))
    )
    tf = best_of(func_best(base), repeat=1)
    print(
        f"torch.func vmap(jacrev) {tf * 1e3:.0f} ms (products only, no renormalisation): exact float32 chain with "
        f"Frobenius norms and rank ({exact_frob * 1e3:.0f} ms) is {tf / exact_frob:.2f}x faster; "
        f"with spectral norms too, {tf / exact32:.2f}x"
    )
    naive, how = naive_seconds(base)
    print(f"naive autograd.functional.jacobian {naive:.1f} s ({how}): exact is {naive / exact32:.0f}x faster")
    est = estimate_chain(spec32, p32.weights_as(torch.float32, CPU), r32, torch.float32, torch.device("cpu"))
    ex = exact_chain(spec32, p32.weights_as(torch.float32, CPU), r32, torch.float32, torch.device("cpu"))
    est_t = best_of(
        lambda: estimate_chain(spec32, p32.weights_as(torch.float32, CPU), r32, torch.float32, torch.device("cpu")),
        repeat=1,
    )
    err_f = max(abs(a.log10_frobenius_norm - b.log10_frobenius_norm) for a, b in zip(est.stats, ex.stats, strict=True))
    err_s = max(abs(a.log10_spectral_norm - b.log10_spectral_norm) for a, b in zip(est.stats, ex.stats, strict=True))
    k, it = spec32.jacobian.probes, spec32.jacobian.power_iterations
    print(
        f"estimate ({k} probes, {it} power steps/layer): {est_t * 1e3:.0f} ms = {est_t * 1e3 / fb_ms:.1f}x fwd+bwd, "
        f"{exact32 / est_t:.2f}x cheaper than exact; worst |Δlog10| Frobenius {err_f:.3f}, spectral {err_s:.3f}"
    )
    frob_only = dataclasses.replace(spec32, jacobian=dataclasses.replace(spec32.jacobian, power_iterations=0))
    fo = best_of(
        lambda: estimate_chain(frob_only, p32.weights_as(torch.float32, CPU), r32, torch.float32, torch.device("cpu")),
        repeat=1,
    )
    print(f"estimate, Frobenius norms only (one probe sweep): {fo * 1e3:.0f} ms = {fo / fb:.1f}x fwd+bwd")
    state = 4 * batch * n * n * 8 / 2**20
    print(f"exact method product state: {state:.0f} MiB (O(n²·batch), independent of depth)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller cases (for a smoke run)")
    args = cpu_args(ap)
    cases = [(20, 64, 8), (20, 256, 2)] if args.quick else [(100, 256, 8), (50, 1024, 1), (100, 64, 8)]
    for d, n, b in cases:
        for act in ("relu", "sigmoid"):
            case(d, n, b, act, args.quick)
    if not args.quick:  # where k·d < n/5 the matrix-free estimate is the cheaper way to spectral norms
        case(10, 2048, 1, "tanh", quick=True)


if __name__ == "__main__":
    main()
