"""Residual and normalised networks against torch.autograd on torch.nn modules with the same weights (float64).

The oracle is written from the issue's definitions, not from `architecture.ops`: blocks of `every` layers, a skip
where the block's widths agree, nn.LayerNorm / nn.RMSNorm / nn.BatchNorm1d (training mode) at init. Its products
are the rows of the whole batch's Jacobian ∂h^d/∂h^t from autograd, one backward per output value.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from service.engine import analyze
from service.engine.network import make_parameters
from service.engine.spec import NORM_EPS, ModelSpec

from .conftest import make_spec

ACT = {"relu": torch.relu, "tanh": torch.tanh, "identity": lambda z: z, "sigmoid": torch.sigmoid}


def _norm_module(kind: str, n: int) -> nn.Module:
    if kind == "layernorm":
        return nn.LayerNorm(n, eps=NORM_EPS, dtype=torch.float64)
    if kind == "rmsnorm":
        return nn.RMSNorm(n, eps=NORM_EPS, dtype=torch.float64)
    return nn.BatchNorm1d(n, eps=NORM_EPS, dtype=torch.float64).train()


class OracleNet(nn.Module):
    """The network the spec describes, from nn modules: forward returns h^1..h^d (each retained for autograd)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        params = make_parameters(spec)
        self.x = params.x
        self.spec = spec
        arch = spec.architecture
        assert arch is not None
        self.kind, self.pos = arch.normalization.kind, arch.normalization.position
        self.every = arch.residual.every if arch.residual else 1
        self.scale = arch.residual.branch_scale if arch.residual else None
        self.linears = nn.ModuleList()
        for w in params.weights:
            lin = nn.Linear(w.shape[1], w.shape[0], bias=False, dtype=torch.float64)
            with torch.no_grad():
                lin.weight.copy_(w)
            self.linears.append(lin)
        widths = spec.widths
        self.pre = nn.ModuleList([_norm_module(self.kind, widths[t - 1]) for t in range(1, spec.depth + 1)])
        self.post = nn.ModuleList([_norm_module(self.kind, widths[t]) for t in range(1, spec.depth + 1)])

    def forward(self) -> list[torch.Tensor]:
        spec, widths, d = self.spec, self.spec.widths, self.spec.depth
        residual = self.scale is not None
        norm = self.kind != "none"
        h = self.x
        outs: list[torch.Tensor] = []
        for first in range(1, d + 1, self.every):
            last = min(first + self.every - 1, d)
            skip = residual and widths[first - 1] == widths[last]
            h_in = h
            for t in range(first, last + 1):
                if norm and self.pos == "pre" and (t == first or not residual):
                    h = self.pre[t - 1](h)
                h = ACT[spec.activations[t - 1]](self.linears[t - 1](h))
                if t == last and skip:
                    h = h_in + self.scale * h
                if norm and self.pos == "post" and (t == last or not residual):
                    h = self.post[t - 1](h)
                h.retain_grad()
                outs.append(h)
        return outs


def oracle(spec: ModelSpec) -> list[torch.Tensor]:
    """The whole batch's ∂h^d/∂h^t, (B·n_d, B·n_t) per layer."""
    net = OracleNet(spec)
    outs = net()
    top = outs[-1]
    rows: list[list[torch.Tensor]] = [[] for _ in outs]
    for b in range(top.shape[0]):
        for i in range(top.shape[1]):
            grads = torch.autograd.grad(top[b, i], outs, retain_graph=True, allow_unused=True)
            for t, g in enumerate(grads):
                rows[t].append(torch.zeros_like(outs[t]).flatten() if g is None else g.flatten())
    return [torch.stack(r) for r in rows]


def _per_sample(full: torch.Tensor, batch: int) -> torch.Tensor:
    """The diagonal blocks (B, n_d, n_t) of a whole-batch product, after checking the others are zero."""
    n_d, n_t = full.shape[0] // batch, full.shape[1] // batch
    blocks = full.reshape(batch, n_d, batch, n_t)
    diag = torch.stack([blocks[b, :, b, :] for b in range(batch)])
    off = blocks.clone()
    for b in range(batch):
        off[b, :, b, :] = 0
    assert float(off.abs().max()) == 0.0
    return diag


ARCHS = [
    {"residual": {"every": 1, "branch_scale": 1.0}},
    {"residual": {"every": 2, "branch_scale": 0.5}},
    {"residual": {"every": 3, "branch_scale": 1.3}},
    {"normalization": {"kind": "layernorm", "position": "pre"}},
    {"normalization": {"kind": "layernorm", "position": "post"}},
    {"normalization": {"kind": "rmsnorm", "position": "pre"}},
    {"normalization": {"kind": "rmsnorm", "position": "post"}},
    {"normalization": {"kind": "batchnorm", "position": "pre"}},
    {"normalization": {"kind": "batchnorm", "position": "post"}},
    {"residual": {"every": 2, "branch_scale": 0.7}, "normalization": {"kind": "layernorm", "position": "pre"}},
    {"residual": {"every": 2, "branch_scale": 0.7}, "normalization": {"kind": "layernorm", "position": "post"}},
    {"residual": {"every": 1, "branch_scale": 1.0}, "normalization": {"kind": "rmsnorm", "position": "pre"}},
    {"residual": {"every": 2, "branch_scale": 1.0}, "normalization": {"kind": "batchnorm", "position": "pre"}},
    {"residual": {"every": 1, "branch_scale": 0.5}, "normalization": {"kind": "batchnorm", "position": "post"}},
]
# unequal widths: the blocks whose widths differ have no skip
WIDTHS = [5, 8, 8, 8, 8, 6, 6]


def _spec(arch: dict, activation: str = "tanh", **more) -> ModelSpec:
    return make_spec(**{**_body(arch), "activation": activation, "dtype": "float64", **more})


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: "-".join(f"{k}" for k in _flat(a)))
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_products_and_gradients_match_autograd(arch: dict, activation: str) -> None:
    spec = _spec(arch, activation)
    report = analyze(spec)
    products = oracle(spec)
    coupled = spec.architecture.normalization.kind == "batchnorm"
    for t, lr in enumerate(report.layers[:-1], start=1):
        full = products[t - 1]
        jp = lr.jacobian_product
        if coupled:
            fro = float(torch.linalg.matrix_norm(full))
            expected_fro, smax = math.log10(fro), float(torch.linalg.svdvals(full)[0])
            expected_smax, expected_max = math.log10(smax), math.log10(fro)
        else:
            per = _per_sample(full, spec.batch_size)
            expected_fro = float(torch.log10(torch.linalg.matrix_norm(per)).mean())
            expected_smax = float(torch.log10(torch.linalg.svdvals(per)[:, 0]).mean())
            # the largest sample's norm is finite even where a sample whose units all died makes the mean -inf
            expected_max = float(torch.log10(torch.linalg.matrix_norm(per)).max())
        assert jp.log10_frobenius_norm_max == pytest.approx(expected_max, rel=1e-10, abs=1e-10), t
        assert jp.log10_frobenius_norm == pytest.approx(expected_fro, rel=1e-10, abs=1e-10), t
        assert jp.log10_spectral_norm == pytest.approx(expected_smax, rel=1e-10, abs=1e-10), t
    # gradients of the loss: weights and h^t, as the float64 pass computed them (a fresh graph: .grad of retained
    # tensors is not to be mixed with the product rows above)
    net = OracleNet(spec)
    outs = net()
    loss = torch.nn.functional.mse_loss(outs[-1], torch.zeros_like(outs[-1]))
    loss.backward()
    for lr, lin, h in zip(report.layers, net.linears, outs, strict=True):
        assert lr.weight_grad.norm == pytest.approx(float(lin.weight.grad.norm()), rel=1e-10)
        assert lr.output_grad.norm == pytest.approx(float(h.grad.norm()), rel=1e-10)
    assert report.loss == pytest.approx(float(loss.detach()), rel=1e-12)


def _flat(arch: dict) -> list[str]:
    out = []
    if arch.get("residual"):
        out.append(f"res{arch['residual']['every']}x{arch['residual']['branch_scale']}")
    if arch.get("normalization"):
        out.append(f"{arch['normalization']['kind']}-{arch['normalization']['position']}")
    return out


@pytest.mark.parametrize("every", [1, 2, 3])
def test_branch_scale_zero_is_the_identity_across_every_block(every: int) -> None:
    spec = _spec({"residual": {"every": every, "branch_scale": 0.0}}, "relu", layers=[8] * 10)
    report = analyze(spec)
    boundaries = [b for b in range(every, 10, every)]
    for t in boundaries:
        jp = report.layers[t - 1].jacobian_product
        assert jp.log10_rms_gain == pytest.approx(0.0, abs=1e-15)
        assert jp.log10_spectral_norm == pytest.approx(0.0, abs=1e-15)
        assert jp.log10_min_singular_value == pytest.approx(0.0, abs=1e-15)
    assert report.diagnosis.verdict == "stable"
    assert report.diagnosis.growth_from_layer == every


def test_no_normalisation_is_the_plain_mlp_exactly() -> None:
    plain = make_spec(layers=[6] * 8, activation="tanh", dtype="float32")
    none = make_spec(
        layers=[6] * 8, activation="tanh", dtype="float32", architecture={"normalization": {"kind": "none"}}
    )
    assert none.architecture is None and none == plain
    assert analyze(none).id == analyze(plain).id


def test_block_engine_on_a_plain_network_agrees_with_the_plain_engine() -> None:
    """The block path with nothing to add (forced past the schema) against the plain engine: same numbers."""
    import dataclasses

    from service.engine.spec import Architecture

    plain = make_spec(layers=[6, 7, 7, 5], activation="tanh", dtype="float16", init="normal", weight_scale=0.8)
    forced = dataclasses.replace(plain, architecture=Architecture())
    a, b = analyze(plain), analyze(forced)
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert lb.jacobian_product.log10_frobenius_norm == pytest.approx(
            la.jacobian_product.log10_frobenius_norm, abs=1e-12
        )
        assert lb.weight_grad.norm == la.weight_grad.norm  # the same float16 pass, bit for bit
        assert lb.output_grad.norm == la.output_grad.norm
    assert b.diagnosis.verdict == a.diagnosis.verdict


@pytest.mark.parametrize("arch", ARCHS[3:], ids=lambda a: "-".join(_flat(a)))
def test_estimate_with_every_row_as_a_probe_is_exact(arch: dict) -> None:
    exact = analyze(_spec(arch))
    n_rows = WIDTHS[-1] * (4 if arch.get("normalization", {}).get("kind") == "batchnorm" else 1)
    est = analyze(_spec(arch, jacobian={"method": "estimate", "probes": n_rows}))
    for le, lx in zip(est.layers, exact.layers, strict=True):
        assert le.jacobian_product.log10_frobenius_norm == pytest.approx(
            lx.jacobian_product.log10_frobenius_norm,
            abs=1e-6,  # the estimate walks in float32
        )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("arch", [ARCHS[1], ARCHS[4], ARCHS[8], ARCHS[12]], ids=lambda a: "-".join(_flat(a)))
def test_every_dtype_runs_and_the_products_are_exact(dtype: str, arch: dict) -> None:
    """The products come from the float64 reference of the network as drawn in the dtype (weights and inputs rounded
    to it), whatever the pass dtype: autograd on that network agrees to 1e-10."""
    spec = make_spec(**{**_body(arch), "dtype": dtype})
    report = analyze(spec)
    products = oracle(spec)
    coupled = spec.architecture.normalization.kind == "batchnorm"
    for t, lr in enumerate(report.layers[:-1], start=1):
        full = products[t - 1]
        norms = torch.linalg.matrix_norm(full if coupled else _per_sample(full, spec.batch_size))
        assert lr.jacobian_product.log10_frobenius_norm == pytest.approx(float(torch.log10(norms).mean()), abs=1e-10)
    assert report.runtime.dtype == dtype
    assert all(lr.weight_grad.nonfinite_fraction == 0.0 for lr in report.layers)


def _body(arch: dict) -> dict:
    return {
        "layers": WIDTHS,
        "activation": "tanh",
        "init": "normal",
        "weight_scale": 0.6,
        "batch_size": 4,
        "loss": "mse",
        "architecture": arch,
        "jacobian": {"method": "exact"},
    }


@pytest.mark.parametrize("arch", [ARCHS[1], ARCHS[4], ARCHS[8], ARCHS[10]], ids=lambda a: "-".join(_flat(a)))
def test_estimate_spectral_norms_converge_to_the_exact_ones(arch: dict) -> None:
    """The matrix-free power iteration (a Ritz value, so a lower bound) against svdvals of the formed product."""
    exact = analyze(_spec(arch))
    est = analyze(_spec(arch, jacobian={"method": "estimate", "power_iterations": 30}))
    for le, lx in zip(est.layers[:-1], exact.layers[:-1], strict=True):
        got, want = le.jacobian_product.log10_spectral_norm, lx.jacobian_product.log10_spectral_norm
        assert got <= want + 1e-6
        assert got == pytest.approx(want, abs=0.05)


@pytest.mark.parametrize("arch", [ARCHS[1], ARCHS[3], ARCHS[6], ARCHS[7], ARCHS[10]], ids=lambda a: "-".join(_flat(a)))
def test_emulated_float16_is_as_close_to_float64_as_native_float16(arch: dict) -> None:
    """The emulation rounds every value a native pass holds once. Against a float64 pass of the same (float16-
    rounded) network it is within 2 % on every weight gradient, and no farther than torch's native CPU float16
    kernels are (batchnorm's native half kernel is the less accurate of the two)."""
    from service.engine.blockpass import run_block_pass

    # cross_entropy: a post-normalised top makes mse constant up to ε (its gradient rounding noise)
    body = {**_body(arch), "dtype": "float16", "layers": [16] * 7, "batch_size": 8, "loss": "cross_entropy"}
    spec = make_spec(**body)
    params = make_parameters(spec)
    cpu = torch.device("cpu")
    emulated = run_block_pass(spec, params, cpu)
    native = run_block_pass(spec, params, cpu, emulate_float16=False)
    exact = run_block_pass(spec.with_changes(dtype="float64"), params, cpu)
    assert emulated.emulated and not native.emulated
    for e, n, x in zip(emulated.weight_grads, native.weight_grads, exact.weight_grads, strict=True):
        scale = float(x.norm())
        err_e, err_n = float((e.double() - x).norm()) / scale, float((n.double() - x).norm()) / scale
        assert err_e <= 0.02 and err_e <= err_n + 0.005
    assert emulated.loss == pytest.approx(exact.loss, rel=1e-2)


def test_the_block_reference_checks_itself_too() -> None:
    """reference_fidelity runs the block network's own reference from moved inputs (fidelity.check_reference)."""
    tame = analyze(_spec(ARCHS[9]))
    assert tame.reference_fidelity is not None and tame.reference_fidelity.trusted
    assert len(tame.reference_fidelity.log10_relative_errors) == len(WIDTHS) - 1
