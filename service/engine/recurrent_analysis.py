"""One analysis of a recurrent spec: the pass in the dtype, the float64 reference, the products through time, the
exact gradients (range events), theory and diagnosis, assembled into the report's usual shape along axis time."""

from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from .activations import get as get_activation
from .fidelity import reference_note
from .gradstats import smallest_normal, tensor_stats_many
from .network import TORCH_DTYPES, device_name, resolve_device
from .recurrent import GATE_NAMES, RecurrentParameters, make_recurrent_parameters, run_recurrent_pass, state_width
from .recurrent_chain import depth_products, exact_walk, time_products
from .recurrent_diagnosis import diagnose_recurrent
from .recurrent_fidelity import check_recurrent_reference
from .recurrent_ref import RecurrentReference, run_recurrent_reference
from .recurrent_theory import recurrent_theory
from .report import (
    ActivationStats,
    Clipping,
    LayerReport,
    MatrixGrad,
    QuantityEvent,
    RangeEvent,
    RecurrentInfo,
    Report,
    Runtime,
    TensorStats,
    UpdateStats,
)
from .spec import ModelSpec
from .training_verify import run_probe

Tensor = torch.Tensor


@dataclass
class _Events:
    """Flagged steps per (event kind, quantity): step → fraction."""

    hits: dict[tuple[str, str], dict[int, float]] = field(default_factory=dict)

    def add(self, kind: str, quantity: str, step: int, count: int, numel: int, spec: ModelSpec) -> None:
        th = spec.thresholds
        if numel and count / numel > th.flag_fraction and count >= th.flag_min_count:
            self.hits.setdefault((kind, quantity), {})[step] = count / numel

    def event(self, kind: str, steps: int) -> RangeEvent:
        by: dict[str, QuantityEvent] = {}
        order: list[tuple[int, str, int, float]] = []  # (computation order, quantity, step, fraction)
        rank = {"forward_activation": 0, "loss": 1, "output_grad": 2, "weight_grad": 3}
        for (k, q), hit in self.hits.items():
            if k != kind:
                continue
            first = min(hit) if q == "forward_activation" else max(hit)
            by[q] = QuantityEvent(first, len(hit), max(hit.values()))
            for t, frac in hit.items():
                pos = t if q == "forward_activation" else (steps + 1 if q == "loss" else 2 * steps + 2 - t)
                order.append((pos * 4 + rank[q], q, t, frac))
        if not order:
            return RangeEvent(False, None, None, None, None, by)
        _, q, t, frac = min(order)
        return RangeEvent(True, t, q, frac, steps - t + 1, by)


def _classify(
    ev: _Events, spec: ModelSpec, quantity: str, step: int, got: Tensor, exact_dir: Tensor, exact_log: Tensor
) -> None:
    """Overflow (non-finite in the pass), underflow (0 in the pass, exact below the smallest normal) and cancellation
    (0 in the pass, exact inside the normal range) of one tensor; exact = exact_dir·e^exact_log (unscaled)."""
    numel = got.numel()
    mag = got.abs()
    low, high = float(mag.min()), float(mag.max())  # the common case proved by two reductions: finite, no zeros
    if not math.isfinite(high):
        ev.add("overflow", quantity, step, int((~torch.isfinite(got)).sum()), numel, spec)
    if low != 0.0:
        return
    lost = (got == 0) & (exact_dir != 0)
    n_lost = int(lost.sum())
    if n_lost == 0:
        return
    # exact |value|·S < smallest normal ⇔ |direction| < e^{ln tiny − log − ln S}: a comparison, no log per element
    tiny = math.log(smallest_normal(TORCH_DTYPES[spec.dtype])) - math.log(spec.loss_scale)
    bound = torch.exp((tiny - exact_log).clamp(max=700.0))
    under = int((lost & (exact_dir.abs() < bound)).sum())
    ev.add("underflow", quantity, step, under, numel, spec)
    ev.add("cancellation", quantity, step, n_lost - under, numel, spec)


def _activation(spec: ModelSpec, ref: RecurrentReference, t: int, out: Tensor) -> ActivationStats:
    rec = spec.recurrent
    assert rec is not None
    cache = ref.steps[t - 1][-1].cache
    nonfinite = float((~torch.isfinite(out)).double().mean())
    if rec.cell == "rnn":
        act = get_activation(spec.activations[0])
        z = cache["z"]
        sp = act.prime(z)
        ln_rms = 0.5 * math.log(float((z * z).mean()) or 1e-300) + (float(cache["m"].mean()) if "m" in cache else 0.0)
        return ActivationStats(
            name=act.name,
            pre_activation_mean=float(z.mean()) if "m" not in cache else None,
            pre_activation_std=float(z.std()) if "m" not in cache and z.numel() > 1 else None,
            log10_pre_activation_rms=ln_rms / math.log(10.0),
            sigma_prime_mean=float(sp.mean()),
            sigma_prime_max=float(sp.max()),
            saturated_fraction=float(
                (sp < 0.01 * float(act.prime(torch.zeros(1, dtype=torch.float64)).max() or 1)).double().mean()
            )
            if not act.homogeneous
            else None,
            dead_fraction=float((sp == 0).double().mean()) if act.homogeneous else None,
            output_nonfinite_fraction=nonfinite,
            sigma_prime_mean_square=float((sp * sp).mean()),
        )
    cand = cache["g"] if rec.cell == "lstm" else cache["n"]
    sp = 1.0 - cand * cand  # tanh' of the candidate
    return ActivationStats(
        name=f"{rec.cell}_candidate_tanh",
        pre_activation_mean=None,
        pre_activation_std=None,
        log10_pre_activation_rms=None,
        sigma_prime_mean=float(sp.mean()),
        sigma_prime_max=float(sp.max()),
        saturated_fraction=float((sp < 0.01).double().mean()),
        dead_fraction=None,
        output_nonfinite_fraction=nonfinite,
        sigma_prime_mean_square=float((sp * sp).mean()),
    )


def _update(spec: ModelSpec, weight: Tensor, stats: TensorStats) -> UpdateStats | None:
    """One SGD step's ‖lr·∂ℓ/∂W‖/‖W‖, as the MLP's per-layer update (None without a learning_rate)."""
    if spec.learning_rate is None:
        return None
    w_norm = float(torch.linalg.vector_norm(weight))
    ratio = spec.learning_rate * stats.norm / w_norm if stats.norm is not None and w_norm > 0 else None
    log = math.log10(ratio) if ratio and ratio > 0 and math.isfinite(ratio) else None
    return UpdateStats(weight_norm=w_norm, update_ratio=ratio, log10_update_ratio=log)


def _matrix_grads(
    spec: ModelSpec, grads: dict[str, Tensor], params: RecurrentParameters, dtype: torch.dtype
) -> list[MatrixGrad]:
    rec = spec.recurrent
    assert rec is not None
    out: list[MatrixGrad] = []
    names = GATE_NAMES[rec.cell]
    for key, g in grads.items():
        matrix, layer = key.split("^")
        w = (params.w_hh if matrix == "W_hh" else params.w_ih)[int(layer) - 1]
        parts: list[tuple[str | None, Tensor, Tensor]] = [(None, g, w)]
        if len(names) > 1:
            h = rec.hidden
            parts += [(n, g[k * h : (k + 1) * h], w[k * h : (k + 1) * h]) for k, n in enumerate(names)]
        stats = tensor_stats_many([p for _, p, _ in parts], dtype, spec.loss_scale)
        out += [
            MatrixGrad(int(layer), matrix, gate, st, _update(spec, wp, st))
            for (gate, _, wp), st in zip(parts, stats, strict=True)
        ]
    return out


@dataclass
class _ClipSums:
    """‖∂ℓ/∂W_hh‖ of the top layer summed over every step and over the steps inside the stable band (float64)."""

    total: Tensor | None = None
    inside: Tensor | None = None
    any_inside: bool = False

    def add(self, share: Tensor, inside: bool) -> None:
        s = share.double()
        self.total = s.clone() if self.total is None else self.total + s
        if inside:
            self.inside = s.clone() if self.inside is None else self.inside + s
            self.any_inside = True


def _clipping(spec: ModelSpec, sums: _ClipSums) -> Clipping:
    """The threshold: ‖Σ shares‖ of the top layer's ∂ℓ/∂W_hh over the steps whose product ∂h_T/∂S_t stays at or below
    the exploding threshold (the gradient without its exploding part), against ‖∂ℓ/∂W_hh‖ itself, both from the
    pass in the dtype (unscaled); equal, with factor 1, where no step explodes. It bounds the update only."""
    measured = float(torch.linalg.vector_norm(sums.total)) / spec.loss_scale if sums.total is not None else math.nan
    threshold = None
    if sums.any_inside and sums.inside is not None:
        threshold = float(torch.linalg.vector_norm(sums.inside)) / spec.loss_scale
    threshold = threshold if threshold is not None and math.isfinite(threshold) else None
    measured_ok = measured if math.isfinite(measured) else None
    factor = min(1.0, threshold / measured_ok) if threshold is not None and measured_ok else None
    return Clipping(
        threshold=threshold,
        measured_norm=measured_ok,
        clip_factor=factor,
        kind="training_time",
        note="clip ‖∂ℓ/∂W_hh‖ to this threshold during training (Pascanu et al. 2013) to bound the update when it "
        "explodes; it changes neither ∂h_T/∂h_t nor the verdict, and does nothing for vanishing gradients",
    )


def analyze_recurrent(
    spec: ModelSpec, report_id: str, method: str, gflop: float, engine_version: str, verify: Any, fidelity: bool = True
) -> Report:
    start = time.perf_counter()
    rec = spec.recurrent
    assert rec is not None
    device = resolve_device(spec.device, gflop)
    dtype = TORCH_DTYPES[spec.dtype]
    params = make_recurrent_parameters(spec)
    result = run_recurrent_pass(spec, params, device)
    ref = run_recurrent_reference(spec, params)
    with torch.no_grad():
        chain = time_products(spec, params, ref, method)
        depth = depth_products(spec, params, ref, method)
    ev = _Events()
    for t, out in enumerate(result.outputs, start=1):
        ev.add("overflow", "forward_activation", t, int((~torch.isfinite(out)).sum()), out.numel(), spec)
        for lower in result.layer_outputs:
            ev.add("overflow", "forward_activation", t, int((~torch.isfinite(lower[t - 1])).sum()), out.numel(), spec)
    if not math.isfinite(result.loss):
        ev.hits.setdefault(("overflow", "loss"), {})[rec.steps] = 1.0

    w_stats: dict[int, TensorStats] = {}
    sums = _ClipSums()
    band = spec.thresholds.exploding_log10

    def visit(t: int, g_dir: Tensor, g_log: Tensor, share: Tensor, share_log: Tensor) -> None:
        """Step t of the exact walk beside the pass: flags, and the pass's share of ∂ℓ/∂W_hh formed once."""
        _classify(ev, spec, "output_grad", t, result.output_grads[t - 1].cpu(), g_dir, g_log[:, None])
        got = result.step_share(t)
        _classify(ev, spec, "weight_grad", t, got.cpu(), share, share_log)
        w_stats[t] = tensor_stats_many([got], dtype, spec.loss_scale)[0]
        gain = chain.stats[t - 1].log10_rms_gain
        sums.add(got, gain is not None and gain <= band)

    with torch.no_grad():
        exact_walk(spec, params, ref, visit)
    out_stats = tensor_stats_many(result.output_grads, dtype, spec.loss_scale)
    state = state_width(rec) * rec.stacked
    layers = [
        LayerReport(
            index=t,
            in_features=state,
            out_features=rec.hidden,
            weight_grad=w_stats[t],
            output_grad=out_stats[t - 1],
            jacobian_product=chain.stats[t - 1],
            activation=_activation(spec, ref, t, result.outputs[t - 1]),
        )
        for t in range(1, rec.steps + 1)
    ]
    th = recurrent_theory(spec, params, ref)
    overflow, underflow, cancellation = (ev.event(k, rec.steps) for k in ("overflow", "underflow", "cancellation"))
    diag = diagnose_recurrent(spec, layers, th, overflow, underflow, cancellation, verify)
    training = run_probe(spec, params, device, diag.recommendations)
    info = RecurrentInfo(
        cell=rec.cell,
        steps=rec.steps,
        hidden=rec.hidden,
        input_dim=rec.input_dim,
        stacked=rec.stacked,
        loss_at=rec.loss_at,
        forget_bias=rec.forget_bias,
        state_units=state_width(rec),
        products="layers[t−1].jacobian_product is ∂h_T/∂S_t: the top layer's last output over every stacked layer's "
        "state after step t (lstm: h and c); weight_grad is step t's share of the top layer's ∂ℓ/∂W_hh, output_grad "
        "∂ℓ/∂h_t of the top layer",
        onset_steps_back=None if diag.onset_layer is None else rec.steps - diag.onset_layer,
        weight_grads=_matrix_grads(spec, result.grads, params, dtype),
        depth_products=depth,
        clipping=_clipping(spec, sums),
    )
    notes = list(ref.notes)
    checked = check_recurrent_reference(spec, params, ref) if fidelity else None
    if checked is not None and (chaotic := reference_note(checked)):
        notes.append(chaotic.replace("layer", "step"))
    if result.emulated:
        notes.append("float16 on the CPU is emulated: float64 arithmetic rounded to float16 once per operation")
    runtime = Runtime(
        device=str(device),
        device_name=device_name(device),
        device_requested=spec.device,
        dtype=spec.dtype,
        float16_emulated=result.emulated,
        jacobian_method=chain.method,
        jacobian_precision="float64",
        torch_version=torch.__version__,
        python_version=platform.python_version(),
        engine_version=engine_version,
        threads=torch.get_num_threads(),
        elapsed_ms=(time.perf_counter() - start) * 1e3,
        notes=notes,
    )
    return Report(
        id=report_id,
        engine_version=engine_version,
        depth=rec.steps,
        loss=result.loss,
        loss_status="ok" if math.isfinite(result.loss) else "nonfinite",
        layers=layers,
        diagnosis=diag,
        theory=th,
        runtime=runtime,
        axis="time",
        recurrent=info,
        reference_fidelity=checked,
        training=training,
    )
