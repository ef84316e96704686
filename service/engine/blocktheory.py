"""Mean-field theory of residual and normalised networks, beside the measured products.

Under gradient independence (the backpropagated gradient independent of the forward weights, as in mean-field
analyses of deep networks) a random-direction gradient's squared norm is multiplied per operation by:

- a weight layer with σ: χ_t = σ_w² E[σ'(z)²] at the measured q^t (`theory.chi`, as for the plain MLP);
- a residual block h_out = h_in + s·f(h_in): 1 + s²·Π_branch (the branch's factors), the cross term vanishing in
  expectation over zero-mean weights (Yang & Schoenholz, "Mean Field Residual Networks: On the Edge of Chaos",
  NeurIPS 2017: the gradient grows polynomially, not exponentially, once the stream dominates the branches);
- layernorm: (1 − 2/n)/(v + ε), rmsnorm: (1 − 1/n)/(m + ε), with v (m) the measured variance (mean square) of the
  normalised vector: the Jacobian (1/√(v+ε))(I − 11ᵀ/n − yyᵀ/n) removes two directions and divides by the
  scale. For a positively homogeneous σ the weight scale then cancels (χ ∝ σ_w², v ∝ σ_w²): the products do not
  depend on it (pre- vs post-normalisation in Xiong et al., "On Layer Normalization in the Transformer
  Architecture", ICML 2020);
- batchnorm (no skips, relu): π/(π − 1) per layer, whatever the weight scale, in the wide, large-batch limit
  (Yang, Pennington, Rao, Sohl-Dickstein & Schoenholz, "A Mean Field Theory of Batch Normalization", ICLR 2019).
  Other activations' rates need the paper's batch-dependent fixed points, and skips around batchnorm have no
  closed form there: null, with the reason.

Every prediction is an approximation: the report gives its measured error beside it (narrow nets and few samples
depart from it).
"""

from __future__ import annotations

import math

from .architecture import Block, architecture_of, blocks, growth_from_layer, norm_sites
from .blockref import ArchReference
from .report import ArchitectureTheory, BlockTheory, JacobianStats, Theory
from .spec import ModelSpec

LN10 = math.log(10.0)
REFERENCES = {
    "residual": "Yang & Schoenholz, Mean Field Residual Networks: On the Edge of Chaos, NeurIPS 2017",
    "normalized": "Xiong et al., On Layer Normalization in the Transformer Architecture, ICML 2020",
    "batchnorm": "Yang, Pennington, Rao, Sohl-Dickstein & Schoenholz, A Mean Field Theory of Batch Normalization, "
    "ICLR 2019",
}
ASSUMPTIONS = (
    "gradient independence (the backpropagated gradient independent of the forward weights), wide layers, the "
    "measured pre-activation variance q^t and normalised variances; the cross term of a residual block vanishes "
    "in expectation over zero-mean weights"
)
BATCHNORM_RELU_GAIN2 = math.pi / (math.pi - 1.0)


def _norm_factors(spec: ModelSpec, ref: ArchReference) -> dict[tuple[int, str], float]:
    """(layer, 'input' | 'output') → the predicted factor on the squared gradient norm of that normalisation."""
    kind = architecture_of(spec).normalization.kind
    out: dict[tuple[int, str], float] = {}
    for i, op, at in norm_sites(spec):
        site = ref.sites[i]
        inv2 = float((2.0 * site.ln_inv).exp().mean())
        n = op.width
        keep = {"layernorm": 1.0 - 2.0 / n, "rmsnorm": 1.0 - 1.0 / n}.get(kind, 1.0)
        out[(op.layer, at)] = keep * inv2
    return out


def _measured_gain(stats: list[JacobianStats], block: Block) -> float | None:
    """‖P at the block's input‖ / ‖P at its output‖ (RMS gains, log-domain), where both are layers' outputs."""
    below, above = block.first - 1, block.last
    if below < 1:
        return None
    lo, hi = stats[below - 1].log10_rms_gain, stats[above - 1].log10_rms_gain
    if lo is None or hi is None or not math.isfinite(lo - hi):
        return None
    return 10.0 ** (lo - hi)


def architecture_theory(spec: ModelSpec, ref: ArchReference, plain: Theory, stats: list[JacobianStats]) -> Theory:
    """The plain theory's per-layer χ, with the prediction of the whole product replaced by the architecture's."""
    arch = architecture_of(spec)
    kind = arch.normalization.kind
    res = arch.residual
    parts = [name for name, present in (("residual", res is not None), ("normalized", kind != "none")) if present]
    model = "batchnorm" if kind == "batchnorm" else ("_".join(parts) or "none")
    refs = [REFERENCES[k] for k in ("residual", "normalized", "batchnorm") if k in model]
    start = growth_from_layer(spec)
    measured = stats[start - 1].log10_rms_gain
    chis = {lt.index: lt.chi for lt in plain.layers}
    factors = _norm_factors(spec, ref)
    block_list = blocks(spec)
    reason = ""
    block_theory: list[BlockTheory] = []
    total: float | None = 0.0
    if kind == "batchnorm" and (res is not None or set(spec.activations) != {"relu"}):
        reason = (
            "mean-field theory of batchnorm gives a closed-form rate for relu networks without skips only "
            "(Yang et al. 2019: π/(π−1) per layer); this network has "
            + ("skips around it" if res is not None else f"activation {', '.join(sorted(set(spec.activations)))}")
        )
        total = None
    for block in block_list:
        gain2: float | None
        if kind == "batchnorm":
            gain2 = BATCHNORM_RELU_GAIN2 ** (block.last - block.first + 1) if total is not None else None
        else:
            branch = 1.0
            for t in range(block.first, block.last + 1):
                c = chis.get(t)
                branch *= (c if c is not None else math.nan) * factors.get((t, "input"), 1.0)
                if t < block.last or not block.skip:
                    branch *= factors.get((t, "output"), 1.0)
            if block.skip:
                scale = res.branch_scale if res is not None else 1.0
                gain2 = (1.0 + scale * scale * branch) * factors.get((block.last, "output"), 1.0)
            else:
                gain2 = branch
            gain2 = gain2 if math.isfinite(gain2) and gain2 > 0 else None
        if block.first > start:  # the blocks the verdict's product passes through
            if gain2 is None or total is None:
                total = None
            else:
                total += 0.5 * math.log10(gain2)
        block_theory.append(
            BlockTheory(
                block.first,
                block.last,
                block.skip,
                math.sqrt(gain2) if gain2 is not None else None,
                _measured_gain(stats, block),
            )
        )
    if total is None and not reason:
        reason = "a block's factor is not finite (χ undefined where the pre-activations left float64's range)"
    span = spec.depth - start
    error = total - measured if total is not None and measured is not None and math.isfinite(measured) else None
    arch_theory = ArchitectureTheory(
        model=model,
        status="approximation" if total is not None else "unavailable",
        predicted_log10_total_growth=total,
        measured_log10_total_growth=measured if measured is not None and math.isfinite(measured) else None,
        log10_error=error,
        reason=reason,
        assumptions=ASSUMPTIONS,
        references=refs,
        blocks=block_theory,
    )
    per_layer = 10.0 ** (total / span) if total is not None and span > 0 else None
    plain.predicted_log10_total_growth = total
    plain.predicted_growth_per_layer = per_layer
    plain.architecture = arch_theory
    return plain
