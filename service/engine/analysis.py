"""One analysis, top to bottom: build → pass in the dtype → exact reference → products → diagnosis."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import platform
import time

import torch

from . import diagnosis as diagnosis_mod
from . import qr_spectrum
from .activations import get as get_activation
from .architecture import architecture_info
from .blockchain import block_chain
from .blockpass import run_block_pass
from .blockref import exact_gradients, run_block_reference
from .blocktheory import architecture_theory
from .cost import FLOAT64_CHAIN_MAX_GFLOP, VERIFY_BATCH, VERIFY_PROBES, estimate_cost, exact_chain_flops
from .estimate import estimate_chain
from .events import range_events
from .fidelity import check_reference, reference_note
from .gradstats import tensor_stats_many
from .jacobian import exact_chain
from .layerstats import sigma_prime_stats, weight_norms
from .network import TORCH_DTYPES, Parameters, PassResult, device_name, make_parameters, resolve_device, run_pass
from .placement import resident
from .recurrent_analysis import analyze_recurrent
from .reference import Reference, run_reference
from .report import ActivationStats, JacobianStats, LayerReport, Outcome, Report, Runtime, UpdateStats
from .spec import AUTO_EXACT_GFLOP, ModelSpec, spec_dict
from .theory import theory
from .training_verify import run_probe

LN10 = math.log(10.0)
# Bump when a change alters any reported number: grades are re-checked against it.
ENGINE_VERSION = "1.4.0"
_PRECISIONS = {"float64": torch.float64, "float32": torch.float32}


@dataclasses.dataclass(frozen=True)
class Plan:
    """What is decided before any tensor work: the Jacobian method that will run and the report id."""

    jacobian_method: str  # exact | estimate (auto resolved against the server's budget)
    id: str
    gflop: float  # the estimated work, which also decides where device=auto runs
    verify_budget_gflop: float  # what the recommendation reruns may spend (counted in gflop)


def plan(spec: ModelSpec, auto_exact_gflop: float = AUTO_EXACT_GFLOP) -> Plan:
    """Resolve jacobian.method=auto (it depends on the server's budget) and hash the report id: once
    per analysis, before any tensor work, so a cache can look the report up and servers agree on it."""
    cost = estimate_cost(spec, auto_exact_gflop)
    method = cost.jacobian_method
    return Plan(
        jacobian_method=method, id=_hash_id(spec, method), gflop=cost.gflop, verify_budget_gflop=cost.verify_gflop
    )


def report_id(spec: ModelSpec, auto_exact_gflop: float = AUTO_EXACT_GFLOP) -> str:
    """sha256 of the normalised spec, the Jacobian method that will run and the engine version.

    Same id ⇔ same numbers on the CPU."""
    return plan(spec, auto_exact_gflop).id


def _hash_id(spec: ModelSpec, method: str) -> str:
    payload = json.dumps({"spec": spec_dict(spec), "jacobian_method": method, "engine": ENGINE_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def analyze(
    spec: ModelSpec, auto_exact_gflop: float = AUTO_EXACT_GFLOP, *, planned: Plan | None = None, fidelity: bool = True
) -> Report:
    """The full report for a spec; raises SpecError for what cannot run here (e.g. no CUDA).

    `planned`: the spec's `plan` where the caller already made it (a cache lookup did). `fidelity`: False skips
    the reference's self-check (reference_fidelity None), for the recommendation reruns, which read only the verdict
    and the flags."""
    start = time.perf_counter()
    planned = planned or plan(spec, auto_exact_gflop)
    method = planned.jacobian_method
    if spec.recurrent is not None:  # along time: its own pass, reference, products and diagnosis
        verify = (
            _Verifier(auto_exact_gflop, method, planned.verify_budget_gflop) if spec.verify_recommendations else None
        )
        return analyze_recurrent(spec, planned.id, method, planned.gflop, ENGINE_VERSION, verify, fidelity)
    device = resolve_device(spec.device, planned.gflop)
    pass_dtype = TORCH_DTYPES[spec.dtype]
    params = make_parameters(spec)
    if resident(device):  # every stage after the draws on the device (placement)
        params = params.on(device)
    precision, precision_reason = chain_precision(spec, method)
    if spec.architecture is None:
        result = run_pass(spec, params, device)
        ref = run_reference(spec, params)
        chain_fn = exact_chain if method == "exact" else estimate_chain
        with torch.no_grad():
            chain = chain_fn(spec, params.weights_as(precision, device), ref, precision, device)
        exact = None
    else:  # residual blocks and/or normalisation layers: the block network's own pass, reference and walk
        result = run_block_pass(spec, params, device)
        ref = run_block_reference(spec, params)
        with torch.no_grad():
            chain = block_chain(spec, ref, params.weights_as(precision, device), precision, method)
        exact = exact_gradients(spec, params, ref)
    forward = run_reference if spec.architecture is None else run_block_reference
    checked = check_reference(spec, params, ref, forward) if fidelity else None
    _resolve_singular_values(spec, params, ref, chain.stats, chain.method)
    layers = _layer_reports(spec, params, ref, result, chain.stats, pass_dtype, resident(device))
    overflow, underflow, cancellation = range_events(spec, params, ref, result, layers, exact)
    th = theory(spec, ref, ref.top_grad_dir.device if resident(device) else None)
    if spec.architecture is not None:
        th = architecture_theory(spec, ref, th, chain.stats)
    diag = diagnosis_mod.diagnose(
        spec,
        layers,
        th,
        overflow,
        underflow,
        result.loss,
        cancellation=cancellation,
        verify=_Verifier(auto_exact_gflop, method, planned.verify_budget_gflop)
        if spec.verify_recommendations
        else None,
    )
    training = run_probe(spec, params, device, diag.recommendations)
    notes = list(ref.notes)
    if checked is not None and (chaotic := reference_note(checked)):
        notes.append(chaotic)
    if precision_reason:
        notes.append(precision_reason)
    if spec.device == "auto" and device.type == "cpu" and torch.cuda.is_available():
        notes.append(f"device auto ran on the CPU: {planned.gflop:.2g} GFLOP is below the GPU's break-even")
    constant = _constant_loss_note(spec)
    if constant:
        notes.append(constant)
    if result.emulated:
        notes.append(
            "float16 on the CPU is emulated: float64 arithmetic rounded to float16 once per operation, so the "
            "flags do not depend on the CPU's summation order"
        )
    elapsed_ms = (time.perf_counter() - start) * 1e3
    runtime = Runtime(
        device=str(device),
        device_name=device_name(device),
        device_requested=spec.device,
        dtype=spec.dtype,
        float16_emulated=result.emulated,
        jacobian_method=chain.method,
        jacobian_precision=str(precision).removeprefix("torch."),
        torch_version=torch.__version__,
        python_version=platform.python_version(),
        engine_version=ENGINE_VERSION,
        threads=torch.get_num_threads(),
        elapsed_ms=elapsed_ms,
        notes=notes,
    )
    return Report(
        id=planned.id,
        engine_version=ENGINE_VERSION,
        depth=spec.depth,
        loss=result.loss,
        loss_status="ok" if math.isfinite(result.loss) else "nonfinite",
        layers=layers,
        diagnosis=diag,
        theory=th,
        runtime=runtime,
        architecture=architecture_info(spec),
        reference_fidelity=checked,
        training=training,
    )


def _constant_loss_note(spec: ModelSpec) -> str | None:
    """A post-normalised top makes some losses constant: a layernorm output sums to 0 per sample and a batchnorm
    output per unit (sum, mean: exactly), and every normalised vector has Σy² = n·v/(v + ε) (mse: up to ε)."""
    arch = spec.architecture
    if arch is None or arch.normalization.position != "post" or arch.normalization.kind == "none":
        return None
    kind = arch.normalization.kind
    if spec.loss in ("sum", "mean") and kind in ("layernorm", "batchnorm"):
        how = "exactly constant (a normalised vector sums to 0), so every gradient of the loss is exactly 0"
    elif spec.loss == "mse":
        how = "constant up to ε (Σy² = n·v/(v + ε)), so every gradient of the loss is rounding-sized"
    else:
        return None
    return (
        f"loss {spec.loss} of a {kind} output is {how}; the products are unaffected. cross_entropy gives the loss "
        "a gradient"
    )


def chain_precision(spec: ModelSpec, method: str) -> tuple[torch.dtype, str | None]:
    """The product chain's arithmetic, and why where jacobian.precision auto made a choice worth a line of
    runtime.notes (one decision, so the note cannot disagree with the precision that ran).

    auto: float64 where the chain is cheap (FLOAT64_CHAIN_MAX_GFLOP) or σ_min must be resolved below float32's
    1e-5·σ_max (singular_values=all); float32 otherwise, whose norms agree with float64 to 1e-6 in log10
    (renormalised every layer, each norm summed in float64; measured ≤ 2.3e-7) at twice the speed. The
    matrix-free sweeps are statistical estimates: float32 costs nothing in accuracy there."""
    if method != "exact":
        return torch.float32, None
    if spec.jacobian.precision != "auto":
        return _PRECISIONS[spec.jacobian.precision], None
    gflop = exact_chain_flops(spec.widths, spec.batch_size) / 1e9
    if gflop <= FLOAT64_CHAIN_MAX_GFLOP:
        return torch.float64, None
    if spec.jacobian.singular_values == "all":
        return torch.float64, (
            "jacobian.precision auto ran the exact chain in float64: singular_values all resolves σ_min below "
            "1e-5·σ_max"
        )
    return torch.float32, (
        f"jacobian.precision auto ran the exact chain in float32 ({gflop:.3g} GFLOP is over "
        f"{FLOAT64_CHAIN_MAX_GFLOP:g}): its norms agree with float64 to 1e-6 in log10, and σ_min below "
        "1e-5·σ_max is an upper bound; singular_values all or precision float64 keep float64"
    )


class _Verifier:
    """Reruns a changed spec for the diagnosis: cheaply first, then at the user's own batch, seed and method.

    cheap (full=False): batch ≤ VERIFY_BATCH, Frobenius probes only; full (full=True): the user's batch and
    seed, the Jacobian method that ran for the user (its probes), without spectral norms or svdvals, which
    neither the verdict nor the flags read. A recommendation is only claimed to fix after a full rerun.
    Identical reruns are run once. The reruns share a budget (cost.verify_budget_gflop of the analysis
    itself, which is what the admission limits count): a rerun past it is not run and its recommendation
    stays unverified (fixes: null) rather than the analysis running past what was admitted.
    """

    def __init__(self, auto_exact_gflop: float, method: str, budget_gflop: float) -> None:
        self.auto_exact_gflop = auto_exact_gflop
        self.method = method
        self.budget_gflop = budget_gflop
        self.spent_gflop = 0.0
        self._done: dict[ModelSpec, Outcome] = {}

    def __call__(self, spec: ModelSpec, full: bool) -> Outcome | None:
        if full:
            rerun = dataclasses.replace(
                spec,
                verify_recommendations=False,
                training=None,  # the reruns judge the init's gradients; training_verify.py judges training
                jacobian=dataclasses.replace(
                    spec.jacobian, method=self.method, power_iterations=0, singular_values="none"
                ),
            )
        else:
            rerun = dataclasses.replace(
                spec,
                batch_size=min(spec.batch_size, VERIFY_BATCH),
                verify_recommendations=False,
                training=None,
                jacobian=dataclasses.replace(
                    spec.jacobian,
                    method="estimate",
                    probes=VERIFY_PROBES,
                    power_iterations=0,
                    singular_values="none",
                ),
            )
        if rerun not in self._done:
            planned = plan(rerun, self.auto_exact_gflop)  # once: its cost is charged, then it runs as planned
            if self.spent_gflop + planned.gflop > self.budget_gflop:
                return None
            self.spent_gflop += planned.gflop
            report = analyze(rerun, self.auto_exact_gflop, planned=planned, fidelity=False)
            self._done[rerun] = _outcome(report, rerun.batch_size)
        return self._done[rerun]


def _outcome(rep: Report, batch_size: int) -> Outcome:
    diag = rep.diagnosis
    over, under = diag.overflow.by_quantity, diag.underflow.by_quantity
    return Outcome(
        diag.verdict,
        diag.log10_total_growth,
        diag.growth_per_layer,
        diag.overflow.occurred,
        diag.underflow.occurred,
        gradient_overflow=any(q in over for q in ("output_grad", "weight_grad", "loss")),
        gradient_underflow=any(q in under for q in ("output_grad", "weight_grad")),
        forward_overflow="forward_activation" in over,
        forward_underflow="forward_activation" in under,
        batch_size=batch_size,
        jacobian_method=rep.runtime.jacobian_method,
    )


_CONDITION_STATUS = {
    "resolved": "resolved",
    "upper_bound": "lower_bound",
    "rank_deficient": "infinite",
    "not_computed": "not_computed",
}


def _resolve_singular_values(
    spec: ModelSpec, params: Parameters, ref: Reference, stats: list[JacobianStats], method: str
) -> None:
    """singular_values=all on square products: σ_min and κ that svdvals only bound, from the QR form.

    Every layer gets condition_number_status (κ is a lower bound wherever σ_min is an upper bound) and
    spectral_norm_status (exact from svdvals, else the power iteration's lower bound).
    """
    plain = spec.architecture is None
    if plain and method == "exact" and spec.jacobian.singular_values == "all" and qr_spectrum.supports(spec):
        spectrum = qr_spectrum.product_spectrum(spec, params, ref)
        pairs = zip(spectrum.log_smax, spectrum.log_smin, strict=True)
        # every layer's numbers in one host read (each reduced as one tensor: the same numbers as reads per layer)
        rows = [torch.stack([torch.isfinite(a - b).all().double(), b.mean(), (a - b).mean()]) for a, b in pairs]
        table = torch.stack(rows).tolist()
        for st, (finite, smin_mean, cond_mean) in zip(stats[:-1], table, strict=True):
            if st.min_singular_value_status != "upper_bound" or not finite:
                continue
            st.log10_min_singular_value = smin_mean / LN10
            st.log10_condition_number = cond_mean / LN10
            st.min_singular_value_status = "resolved"
            st.singular_values_source = "qr"
    for st in stats:
        st.condition_number_status = _CONDITION_STATUS.get(st.min_singular_value_status)
        if st.singular_values_source is None and st.min_singular_value_status in ("resolved", "upper_bound"):
            st.singular_values_source = "svd" if st.method == "exact" else None
        if st.log10_spectral_norm is None:
            st.spectral_norm_status = "not_computed"
        else:  # svdvals (or the identity) give σ_max; a power iteration's Ritz value is a lower bound on it
            exact = st.method == "identity" or st.singular_values_source is not None
            st.spectral_norm_status = "exact" if exact else "lower_bound"


def _layer_reports(
    spec: ModelSpec,
    params: Parameters,
    ref: Reference,
    result: PassResult,
    jac_stats: list[JacobianStats],
    pass_dtype: torch.dtype,
    on_device: bool = False,
) -> list[LayerReport]:
    """Per layer: gradient statistics from the pass, activation statistics from the reference, products.

    on_device (placement.resident): every number gathered where the tensors are and read once per group of layers
    (layerstats), instead of the CPU's reads per layer."""
    layers: list[LayerReport] = []
    w_stats = tensor_stats_many(result.weight_grads, pass_dtype, spec.loss_scale, batched=on_device or None)
    out_stats = tensor_stats_many(result.output_grads, pass_dtype, spec.loss_scale, batched=on_device or None)
    sp_stats = sigma_prime_stats(spec, ref) if on_device else None
    w_norms = weight_norms(params.compact_weights) if on_device and spec.learning_rate is not None else None
    # one device-to-host copy for every layer's non-finite fraction (per-layer reads would each synchronise)
    out_nonfinite = torch.stack([(~torch.isfinite(o)).double().mean() for o in result.outputs]).tolist()
    for t in range(1, spec.depth + 1):
        act = get_activation(spec.activations[t - 1])
        lr = ref.layers[t - 1]
        sp = lr.sigma_prime
        if sp_stats is not None:
            s = sp_stats[t - 1]
            dead, saturated = s.dead_fraction, s.saturated_fraction
            sp_mean, sp_max, sp_ms = s.mean, s.max, s.mean_square
        else:
            dead = float((sp == 0).double().mean()) if act.kind == "relu_like" and act.slopes[1] == 0 else None
            saturated = None
            if act.kind in ("saturating", "smooth"):
                saturated = float((sp.abs() < 0.01 * act.peak_prime).double().mean())
            sp_mean, sp_max, sp_ms = float(sp.mean()), float(sp.max()), float((sp * sp).mean())
        activation = ActivationStats(
            name=act.name,
            pre_activation_mean=lr.z_mean,
            pre_activation_std=lr.z_std,
            log10_pre_activation_rms=lr.log10_z_rms,
            sigma_prime_mean=sp_mean,
            sigma_prime_max=sp_max,
            saturated_fraction=saturated,
            dead_fraction=dead,
            output_nonfinite_fraction=out_nonfinite[t - 1],
            sigma_prime_mean_square=sp_ms,
        )
        w_grad = w_stats[t - 1]
        update = None
        if spec.learning_rate is not None:
            w_norm = w_norms[t - 1] if w_norms is not None else float(torch.linalg.vector_norm(params.weights[t - 1]))
            ratio = spec.learning_rate * w_grad.norm / w_norm if w_grad.norm is not None and w_norm > 0 else None
            update = UpdateStats(
                weight_norm=w_norm,
                update_ratio=ratio,
                log10_update_ratio=math.log10(ratio) if ratio and ratio > 0 and math.isfinite(ratio) else None,
            )
        n_out, n_in = params.weights[t - 1].shape
        layers.append(
            LayerReport(
                index=t,
                in_features=n_in,
                out_features=n_out,
                weight_grad=w_grad,
                output_grad=out_stats[t - 1],
                jacobian_product=jac_stats[t - 1],
                activation=activation,
                update=update,
            )
        )
    return layers
