"""Causes and advice that name architectural reasons and changes (residual blocks, normalisation layers).

Each is a small function of the Findings, as in `causes` and `advice`; the words come from `..narrative`. The
advice is a concrete `architecture` change, verified by rerunning the changed spec like every other recommendation.
"""

from __future__ import annotations

import math

from .. import narrative as say
from ..architecture import blocks
from ..report import Cause
from ..spec import Architecture, Normalization, Residual
from .findings import Candidate, Findings, growth_evidence


def _arch(f: Findings) -> Architecture:
    return f.spec.architecture or Architecture()


def _skip_blocks(f: Findings) -> int:
    return sum(1 for b in blocks(f.spec) if b.skip)


def residual_compound(f: Findings) -> Cause | None:
    res = _arch(f).residual
    if f.verdict != "exploding" or res is None or res.branch_scale == 0 or _skip_blocks(f) < 2:
        return None
    k = _skip_blocks(f)
    gain = 10.0 ** (f.total / k) if math.isfinite(f.total) else None
    text = say.residual_compound(k, res.branch_scale, say.num(gain), f.total)
    return Cause(
        "residual_compound",
        text,
        evidence={"skip_blocks": k, "branch_scale": res.branch_scale, "gain_per_block": gain, **growth_evidence(f)},
    )


def batchnorm_explodes(f: Findings) -> Cause | None:
    if f.verdict != "exploding" or _arch(f).normalization.kind != "batchnorm":
        return None
    arch_theory = f.theory.architecture
    predicted = None
    if (
        arch_theory is not None
        and arch_theory.predicted_log10_total_growth is not None
        and f.theory.predicted_growth_per_layer
    ):
        predicted = say.num(f.theory.predicted_growth_per_layer)
    return Cause("batchnorm_explodes", say.batchnorm_explodes(f.growth_text, predicted), evidence=growth_evidence(f))


def normalization_hides_scale(f: Findings) -> Cause | None:
    kind = _arch(f).normalization.kind
    if f.verdict == "stable" or kind in ("none", "batchnorm") or f.chi is None:
        return None
    if (f.verdict == "exploding") != (f.chi > 1.0):  # the weights push the gradient the way it went
        return None
    return Cause(
        "normalization_hides_scale",
        say.normalization_hides_scale(kind, f.chi, f.growth_text),
        evidence=growth_evidence(f),
    )


ARCHITECTURE_RULES = (residual_compound, batchnorm_explodes, normalization_hides_scale)


def _change(arch: Architecture) -> dict[str, object]:
    return {"architecture": arch.as_dict()}


def _branch_scale_for(f: Findings, every: int) -> tuple[int, float]:
    n_blocks = max(1, math.ceil(f.depth / every))
    return n_blocks, float(f"{1.0 / math.sqrt(n_blocks):.4g}")


def scale_branches(f: Findings) -> list[Candidate]:
    arch = _arch(f)
    res = arch.residual
    if f.verdict != "exploding" or res is None or _skip_blocks(f) < 2:
        return []
    k = _skip_blocks(f)
    scale = float(f"{1.0 / math.sqrt(k):.4g}")
    if res.branch_scale <= scale:
        return []
    changed = Architecture(Residual(res.every, scale), arch.normalization)
    return [Candidate("scale_branches", _change(changed), say.SCALE_BRANCHES_WHY, "growth")]


def zero_branches(f: Findings) -> list[Candidate]:
    arch = _arch(f)
    if f.verdict == "stable" or arch.residual is None or arch.residual.branch_scale == 0 or _skip_blocks(f) == 0:
        return []
    changed = Architecture(Residual(arch.residual.every, 0.0), arch.normalization)
    return [Candidate("zero_branches", _change(changed), say.ZERO_BRANCHES_WHY, "growth")]


def add_prenorm(f: Findings) -> list[Candidate]:
    arch = _arch(f)
    if f.verdict == "stable" or arch.residual is None or arch.normalization.kind != "none":
        return []
    changed = Architecture(arch.residual, Normalization("layernorm", "pre"))
    return [Candidate("add_prenorm", _change(changed), say.ADD_PRENORM_WHY, "growth")]


def replace_batchnorm(f: Findings) -> list[Candidate]:
    arch = _arch(f)
    if f.verdict != "exploding" or arch.normalization.kind != "batchnorm":
        return []
    out = [
        Candidate(
            "replace_batchnorm",
            _change(Architecture(arch.residual, Normalization("layernorm", arch.normalization.position))),
            say.REPLACE_BATCHNORM_WHY,
            "growth",
        )
    ]
    if arch.residual is None:
        _, scale = _branch_scale_for(f, 2)
        out.append(
            Candidate(
                "skip_batchnorm",
                _change(Architecture(Residual(2, scale), arch.normalization)),
                say.SKIP_BATCHNORM_WHY,
                "growth",
            )
        )
    return out


def add_residual(f: Findings) -> list[Candidate]:
    """A deep plain network whose gradient leaves the band: skips every 2 layers with 1/√L branches, with and
    without pre-layernorm (the blocks need equal hidden widths to have skips)."""
    if f.verdict == "stable" or f.spec.architecture is not None or f.depth < 4:
        return []
    if len(set(f.spec.widths[1:])) != 1:
        return []
    k, scale = _branch_scale_for(f, 2)
    plain = Architecture(Residual(2, scale))
    prenorm = Architecture(Residual(2, scale), Normalization("layernorm", "pre"))
    return [
        Candidate("add_residual", _change(plain), say.add_residual_why(k, scale, False), "growth"),
        Candidate("add_residual", _change(prenorm), say.add_residual_why(k, scale, True), "growth"),
    ]


ARCHITECTURE_ADVISORS = (scale_branches, zero_branches, add_prenorm, replace_batchnorm, add_residual)
