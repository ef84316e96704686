"""The cost model of a recurrent spec (no torch: the schemas' admission check runs it in the gunicorn master).

Per step and stacked layer, with G gate blocks (rnn 1, lstm 4, gru 3), h hidden units, n_in inputs and S state
units (lstm 2h): the pass 3·2·B·G·h·(n_in + h) (forward and backward), the float64 reference and the exact loss
walk about as much again, a product step 2·R·G·h·(h + n_in) for R rows (exact: B·h; estimate: B·probes), svdvals
of a (h × L·S) product on the picked steps, block power steps (exact) on every other step. Memory: the pass keeps
about 10 tensors of B·G·h per step and layer for autograd, the reference as many float64 ones, the chain 3 copies
of its rows.
"""

from __future__ import annotations

from dataclasses import replace

from .spec import ModelSpec

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
_BYTES = {"float16": 8, "bfloat16": 2, "float32": 4, "float64": 8}  # float16 is emulated in float64 on the CPU
SVD_STEPS = 16  # auto: svdvals on t = 1 and about this many log-spaced steps where all of them cost too much
SVD_ALL_GFLOP = 2.0
# Per step, stacked layer and run, besides the GEMM work: kernel launches and Python (STEP_S), the elementwise passes
# over each step's share of ∂ℓ/∂W_hh and its statistics (ELEM_S per element of W_hh and W_ih), and the exact
# method's power steps and svdvals (EXACT_STEP_S per state unit over hidden). Fitted on one thread so that
# bench/bench_cost.py --recurrent measures at most the prediction.
STEP_S = 6e-4
ELEM_S = 2e-8
EXACT_STEP_S = 1e-3
VERIFY_RERUNS = 6


def _dims(spec: ModelSpec) -> tuple[int, int, int, int, int, int]:
    rec = spec.recurrent
    assert rec is not None
    g = GATES[rec.cell]
    state = 2 * rec.hidden if rec.cell == "lstm" else rec.hidden
    return g, rec.hidden, rec.input_dim, state, rec.stacked, rec.steps


def svd_steps(spec: ModelSpec) -> list[int]:
    """The steps whose formed product gets svdvals (exact method): all, none, or (auto) all where cheap, else t = 1,
    t = T and log-spaced steps back from T."""
    mode = spec.jacobian.singular_values
    _, h, _, state, layers, steps = _dims(spec)
    if mode == "none":
        return []
    per = 10.0 * spec.batch_size * h * (layers * state) ** 2
    if mode == "all" or per * steps <= SVD_ALL_GFLOP * 1e9:
        return list(range(1, steps + 1))
    back = {round(steps - (steps - 1) ** (i / SVD_STEPS)) for i in range(SVD_STEPS + 1)}
    return sorted({1, steps} | {t for t in back if 1 <= t <= steps})


def _pass_flops(spec: ModelSpec, batch: int) -> float:
    g, h, n_in, _, layers, steps = _dims(spec)
    per_layer = [2.0 * batch * g * h * ((n_in if i == 0 else h) + h) for i in range(layers)]
    return 3.0 * steps * sum(per_layer)


def _chain_flops(spec: ModelSpec, rows: int, method: str) -> float:
    g, h, _, state, layers, steps = _dims(spec)
    step = sum(2.0 * rows * g * h * (h + (h if i else 0)) for i in range(layers)) + 6.0 * rows * layers * state
    flops = steps * step
    if method == "exact":
        flops += len(svd_steps(spec)) * 10.0 * spec.batch_size * h * (layers * state) ** 2
        flops += steps * spec.jacobian.power_iterations * 4.0 * spec.batch_size * 8 * h * layers * state
    return flops


def recurrent_cost(spec: ModelSpec, auto_exact_gflop: float) -> tuple[float, float, str, float]:
    """(GFLOP, MiB, the Jacobian method that will run, GFLOP of the recommendation reruns)."""
    g, h, _, state, layers, steps = _dims(spec)
    batch = spec.batch_size
    k = min(spec.jacobian.probes, h)
    exact = _chain_flops(spec, batch * h, "exact")
    approx = _chain_flops(spec, batch * k, "estimate")
    pass_ = 2.0 * _pass_flops(spec, batch)  # the pass in the dtype and the float64 reference with its walk
    exact_mib = 3 * batch * h * layers * state * 8 / 2**20
    method = spec.jacobian.method
    if method == "auto":
        method = "exact" if exact <= auto_exact_gflop * 1e9 and exact_mib <= 1024 else "estimate"
    own = pass_ + (exact if method == "exact" else approx)
    # the reruns may switch an rnn to lstm (4 gate blocks): their budget is that of the widest cell
    verify = VERIFY_RERUNS * (pass_ + approx) * GATES["lstm"] / g if spec.verify_recommendations else 0.0
    per_step = batch * g * h * layers
    mib = (
        steps * per_step * (10 * _BYTES[spec.dtype] + 8 * 8)  # the pass's autograd tensors, the reference's caches
        + steps * spec.batch_size * h * 8 * 4  # outputs, their gradients and the reference's h per step
        + (exact_mib * 2**20 if method == "exact" else 3 * batch * k * layers * state * 8)
        + 4 * layers * g * h * (h + max(h, spec.recurrent.input_dim if spec.recurrent else h)) * 8
    ) / 2**20 + 64.0
    return (own + verify) / 1e9, mib, method, verify / 1e9


def _run(spec: ModelSpec, cell: str, method: str, batch: int) -> tuple[float, float]:
    """(GFLOP, seconds of fixed per-step costs) of one run of the spec with another cell, method or batch."""
    rec = spec.recurrent
    assert rec is not None
    changed = replace(spec, recurrent=replace(rec, cell=cell), batch_size=batch)
    _, h, n_in, state, layers, steps = _dims(changed)
    rows = batch * (h if method == "exact" else min(spec.jacobian.probes, h))
    flops = 2.0 * _pass_flops(changed, batch) + _chain_flops(changed, rows, method)
    fixed = STEP_S + ELEM_S * GATES[cell] * h * (h + n_in) + (EXACT_STEP_S * state / h if method == "exact" else 0.0)
    return flops / 1e9, steps * layers * fixed


def recurrent_seconds(spec: ModelSpec, method: str, gflops_per_thread: float, threads: int) -> dict[str, float]:
    """Predicted seconds by part: the GEMM-equivalent work and the per-step costs (`layers`), the advice's reruns
    included: cheap ones (batch ≤ 4, estimate) of an rnn four times and as an lstm and a gru, of a gated cell three
    times, and one confirmation at the user's batch and method."""
    rec = spec.recurrent
    assert rec is not None
    runs = [(rec.cell, method, spec.batch_size)]
    if spec.verify_recommendations:
        cheap = min(spec.batch_size, 4)
        others = ["rnn"] * 4 + ["lstm", "gru"] if rec.cell == "rnn" else [rec.cell] * 3
        runs += [(c, "estimate", cheap) for c in others] + [(rec.cell, method, spec.batch_size)]
    gflop = fixed = 0.0
    for cell, m, batch in runs:
        g, f = _run(spec, cell, m, batch)
        gflop, fixed = gflop + g, fixed + f
    return {"gemm": gflop / (gflops_per_thread * max(1, threads)), "layers": 0.05 + fixed}
