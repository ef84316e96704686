"""The order of operations of a residual and/or normalised network (pure Python: the cost model reads it too).

A network of d weight layers is a list of blocks of `residual.every` consecutive layers (one layer per block
without residual). In forward order, with N the normalisation layer:

    block with a skip (n_in = n_out):  fork, [N if pre], (linear, act)×every, scale, add, [N if post], mark
    block without a skip:              [N if pre], (linear, act, [N if post and no residual], mark)×every ...

Without residual, pre puts N before every weight layer and post after every activation. With residual, pre puts
N at the start of each block's branch and post after each block's addition (or its last activation where the
block has no skip). `mark t` is where h^t, the output of layer t that the report's layer t describes, is taken:
after the activation inside a branch, after the addition (and the post N) at a block's end.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .report import ArchitectureInfo, BlockInfo, NormalizedLayer
from .spec import NORM_EPS, Architecture, ModelSpec


@dataclass(frozen=True)
class Block:
    first: int  # layers first..last (1-based, inclusive)
    last: int
    skip: bool  # h_out = h_in + branch_scale·f(h_in); False where the block's input and output widths differ


@dataclass(frozen=True)
class Op:
    kind: str  # fork | norm | linear | act | scale | add | mark
    layer: int  # the weight layer it belongs to (for norm: the layer whose input or output it normalises)
    width: int  # width of the tensor it produces


def architecture_of(spec: ModelSpec) -> Architecture:
    return spec.architecture or Architecture()


def blocks(spec: ModelSpec) -> list[Block]:
    arch = architecture_of(spec)
    every = arch.residual.every if arch.residual is not None else 1
    d, widths = spec.depth, spec.widths
    out: list[Block] = []
    for first in range(1, d + 1, every):
        last = min(first + every - 1, d)
        out.append(Block(first, last, arch.residual is not None and widths[first - 1] == widths[last]))
    return out


@functools.lru_cache(maxsize=64)
def ops(spec: ModelSpec) -> tuple[Op, ...]:
    """The network's operations in forward order (see the module docstring); cached per spec, since the pass, the
    reference, the walks and the cost model (per layer, at admission) all read them."""
    arch = architecture_of(spec)
    norm, pos = arch.normalization.kind, arch.normalization.position
    residual = arch.residual is not None
    widths = spec.widths
    out: list[Op] = []
    for block in blocks(spec):
        if block.skip:
            out.append(Op("fork", block.first, widths[block.first - 1]))
        for t in range(block.first, block.last + 1):
            if norm != "none" and pos == "pre" and (t == block.first or not residual):
                out.append(Op("norm", t, widths[t - 1]))
            out.append(Op("linear", t, widths[t]))
            out.append(Op("act", t, widths[t]))
            if t == block.last and block.skip:
                out.append(Op("scale", t, widths[t]))
                out.append(Op("add", t, widths[t]))
            if norm != "none" and pos == "post" and (t == block.last or not residual):
                out.append(Op("norm", t, widths[t]))
            out.append(Op("mark", t, widths[t]))
    return tuple(out)


def boundary_layers(spec: ModelSpec) -> list[int]:
    """Layers whose output is a block's output (every layer without residual): where the products compare."""
    return [b.last for b in blocks(spec)]


def growth_from_layer(spec: ModelSpec) -> int:
    """The layer t whose product ∂h^d/∂h^t the verdict reads: 1 for the plain MLP, else the first block's output.

    Inside a residual branch the product carries the branch's own factor (0 where branch_scale is 0), which says
    nothing about the gradient that reaches the blocks below; the first block boundary does."""
    if spec.architecture is None or spec.architecture.residual is None:
        return 1
    return min(boundary_layers(spec)[0], spec.depth)


def norm_sites(spec: ModelSpec) -> list[tuple[int, Op, str]]:
    """Every normalisation as (op index, op, at): at "input" where it precedes its layer's weights (pre), "output"
    where it follows its layer's σ or its block's sum (post)."""
    out: list[tuple[int, Op, str]] = []
    weighted: set[int] = set()
    for i, op in enumerate(ops(spec)):
        if op.kind == "linear":
            weighted.add(op.layer)
        elif op.kind == "norm":
            out.append((i, op, "output" if op.layer in weighted else "input"))
    return out


def architecture_info(spec: ModelSpec) -> ArchitectureInfo | None:
    """The report's `architecture` member: None for the plain MLP."""
    if spec.architecture is None:
        return None
    arch = spec.architecture
    norm = arch.normalization
    widths = spec.widths
    info_blocks = [
        BlockInfo(
            b.first,
            b.last,
            b.skip,
            None
            if b.skip or arch.residual is None
            else f"no skip: input width {widths[b.first - 1]} differs from output width {widths[b.last]}",
        )
        for b in blocks(spec)
    ]
    normalized = [NormalizedLayer(op.layer, at) for _, op, at in norm_sites(spec)]
    return ArchitectureInfo(
        residual_every=arch.residual.every if arch.residual else None,
        branch_scale=arch.residual.branch_scale if arch.residual else None,
        normalization=norm.kind,
        position=norm.position if norm.kind != "none" else None,
        eps=NORM_EPS if norm.kind != "none" else None,
        blocks=info_blocks,
        normalized_layers=normalized,
        products="whole_batch" if norm.kind == "batchnorm" else "per_sample",
        growth_from_layer=growth_from_layer(spec),
    )
