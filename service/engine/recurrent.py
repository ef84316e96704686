"""Recurrent networks (spec.recurrent): the seeded weights, the cell equations and the pass in the spec's dtype.

The cells are torch.nn.RNN's, LSTM's and GRU's, with torch's weight layout (gate blocks stacked in W_ih and W_hh:
lstm i, f, g, o; gru r, z, n), one bias per layer in the input part (b_ih; b_hh = 0), zero except the forget bias
(lstm f, gru z). W_hh is drawn per gate block with the spec's init and weight_scale (identity: weight_scale·I),
so an orthogonal or identity init is that of every gate's recurrent map; W_ih is N(0, 1/fan_in) (LeCun) whatever
init says, so the input drive of every step has unit variance for unit inputs. Inputs x_s ~ N(0, input_scale²),
one draw per step and sample. The same `cell` function runs the pass (rounded to the dtype through
network.PassState) and the float64 reference (`recurrent_ref`, rounding off).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .activations import get as get_activation
from .draws import draw_weight
from .network import TORCH_DTYPES, PassState, _loss, _RoundedOutputActivation, _stored
from .spec import ModelSpec, Recurrent

Tensor = torch.Tensor
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
GATE_NAMES = {"rnn": ("h",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}
KEEP_GATE = {"lstm": 1, "gru": 1}  # the block of the gate that keeps the state (forget_bias goes there)


def state_width(rec: Recurrent) -> int:
    """Units of one layer's state: h (rnn, gru) or (h, c) (lstm)."""
    return 2 * rec.hidden if rec.cell == "lstm" else rec.hidden


def _seed(seed: int, *parts: object) -> int:
    digest = hashlib.sha256(("gradstab-recurrent:" + ":".join(map(str, (seed, *parts)))).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass
class RecurrentParameters:
    """Per stacked layer: W_hh (G·h, h), W_ih (G·h, n_in), b (G·h), rounded to the pass dtype, held in float64;
    x (T, B, input_dim); labels (B,) or (T, B) for cross_entropy."""

    w_hh: list[Tensor]
    w_ih: list[Tensor]
    biases: list[Tensor]
    x: Tensor
    labels: Tensor | None


def recurrent_matrix(init: str, scale: float, hidden: int, seed: int) -> Tensor:
    """One gate block of W_hh in float64."""
    if init == "identity":
        return scale * torch.eye(hidden, dtype=torch.float64)
    return draw_weight((hidden, hidden), init, scale, seed).double()


def make_recurrent_parameters(spec: ModelSpec) -> RecurrentParameters:
    rec = spec.recurrent
    assert rec is not None
    store = TORCH_DTYPES[spec.dtype]
    g, h = GATES[rec.cell], rec.hidden
    w_hh, w_ih, biases = [], [], []
    for layer in range(1, rec.stacked + 1):
        n_in = rec.input_dim if layer == 1 else h
        blocks = [recurrent_matrix(spec.init, spec.weight_scale, h, _seed(spec.seed, layer, "hh", k)) for k in range(g)]
        w_hh.append(_stored(torch.cat(blocks), store).double())
        ih = draw_weight((g * h, n_in), "normal", 1.0 / n_in**0.5, _seed(spec.seed, layer, "ih"))
        w_ih.append(_stored(ih.double(), store).double())
        b = torch.zeros(g * h, dtype=torch.float64)
        if rec.cell in KEEP_GATE:
            k = KEEP_GATE[rec.cell]
            b[k * h : (k + 1) * h] = rec.forget_bias
        biases.append(_stored(b, store).double())
    gen = torch.Generator(device="cpu").manual_seed(spec.seed)
    x = torch.randn(rec.steps, spec.batch_size, rec.input_dim, generator=gen, dtype=torch.float64) * spec.input_scale
    x = _stored(x, store).double()
    labels = None
    if spec.loss == "cross_entropy":
        shape = (rec.steps, spec.batch_size) if rec.loss_at == "every" else (spec.batch_size,)
        labels = torch.randint(0, h, shape, generator=gen)
    return RecurrentParameters(w_hh, w_ih, biases, x, labels)


def torch_module(spec: ModelSpec, params: RecurrentParameters, dtype: torch.dtype = torch.float64) -> torch.nn.RNNBase:
    """torch.nn.RNN/LSTM/GRU holding these weights (b in bias_ih, bias_hh = 0): what the tests check the engine
    against with autograd, and what bench/bench_recurrent.py times."""
    rec = spec.recurrent
    assert rec is not None
    kw = {"num_layers": rec.stacked, "dtype": dtype}
    if rec.cell == "rnn":
        mod: torch.nn.RNNBase = torch.nn.RNN(rec.input_dim, rec.hidden, nonlinearity=spec.activations[0], **kw)
    else:
        mod = (torch.nn.LSTM if rec.cell == "lstm" else torch.nn.GRU)(rec.input_dim, rec.hidden, **kw)
    with torch.no_grad():
        for k in range(rec.stacked):
            getattr(mod, f"weight_ih_l{k}").copy_(params.w_ih[k])
            getattr(mod, f"weight_hh_l{k}").copy_(params.w_hh[k])
            getattr(mod, f"bias_ih_l{k}").copy_(params.biases[k])
            getattr(mod, f"bias_hh_l{k}").zero_()
    return mod


Round = Callable[[Tensor], Tensor]


def _same(t: Tensor) -> Tensor:
    return t


@dataclass
class CellOut:
    h: Tensor
    c: Tensor | None  # lstm's cell state
    hh: Tensor  # h_prev·W_hhᵀ: its gradient times h_prev is this step's share of ∂ℓ/∂W_hh
    cache: dict[str, Tensor]  # what the backward (recurrent_ref.cell_vjp) reads


def cell(
    kind: str,
    act: str,
    h: Tensor,
    c: Tensor | None,
    inp: Tensor,
    w_hh: Tensor,
    w_ih: Tensor,
    b: Tensor,
    st: PassState | None = None,
) -> CellOut:
    """One step of one layer. st: the pass in the dtype (every value rounded as a native pass holds it); None: the
    float64 reference (no rounding)."""
    rnd: Round = st.rnd if st is not None else _same

    def sig(z: Tensor, name: str) -> Tensor:
        if st is not None and st.emulated and name in ("sigmoid", "tanh"):
            return _RoundedOutputActivation.apply(z, name, st.target)
        return rnd(get_activation(name).fn(z))

    hh = rnd(rnd(h) @ w_hh.T)
    xi = rnd(rnd(inp) @ w_ih.T)
    if kind == "rnn":
        # a zero bias is left out (one rounding less), unless it is trained (the training probe's b)
        z = rnd(rnd(xi + hh) + b) if b.requires_grad or bool(b.any()) else rnd(xi + hh)
        out = sig(z, act)
        return CellOut(out, None, hh, {"z": z.detach()})
    gi = rnd(xi + b)
    if kind == "lstm":
        pre = rnd(gi + hh)
        hn = pre.shape[-1] // 4
        i, f, g, o = (
            sig(pre[..., k * hn : (k + 1) * hn], n) for k, n in enumerate(("sigmoid",) * 2 + ("tanh", "sigmoid"))
        )
        assert c is not None
        c_new = rnd(rnd(f * c) + rnd(i * g))
        tc = sig(c_new, "tanh")
        h_new = rnd(o * tc)
        cache = {"i": i, "f": f, "g": g, "o": o, "c_prev": c, "tc": tc}
        return CellOut(h_new, c_new, hh, {k: v.detach() for k, v in cache.items()})
    hn = hh.shape[-1] // 3
    r = sig(rnd(gi[..., :hn] + hh[..., :hn]), "sigmoid")
    z = sig(rnd(gi[..., hn : 2 * hn] + hh[..., hn : 2 * hn]), "sigmoid")
    n = sig(rnd(gi[..., 2 * hn :] + rnd(r * hh[..., 2 * hn :])), "tanh")
    h_new = rnd(rnd(rnd(1.0 - z) * n) + rnd(z * h))
    cache = {"r": r, "z": z, "n": n, "hn": hh[..., 2 * hn :], "h_prev": h}
    return CellOut(h_new, None, hh, {k: v.detach() for k, v in cache.items()})


@dataclass
class RecurrentPass:
    """The pass in the dtype (values in the compute dtype, detached): per step t the top layer's h_t and
    S·∂ℓ/∂h_t, what forms the top layer's share of S·∂ℓ/∂W_hh from step t, every layer's h_t (overflow flags), and
    the whole-sequence gradients of every matrix (S: loss_scale)."""

    loss: float
    outputs: list[Tensor]  # top layer h_t, t = 1..T
    output_grads: list[Tensor]
    hh_grads: list[Tensor]  # S·∂ℓ/∂(h_{t−1}·W_hhᵀ) of the top layer, (B, G·h): with h_prevs, step t's share of ∂ℓ/∂W_hh
    h_prevs: list[Tensor]  # the top layer's h_{t−1}, (B, h)
    layer_outputs: list[list[Tensor]]  # [layer][t] (lower layers only; the top one is `outputs`)
    grads: dict[str, Tensor]  # "W_hh^l", "W_ih^l" → S·∂ℓ/∂W
    emulated: bool
    target: torch.dtype

    def step_share(self, t: int) -> Tensor:
        """Step t's share of the top layer's S·∂ℓ/∂W_hh (G·h, h), rounded to the dtype as a native pass would hold
        it. Formed on demand: T of them held at once would be T·G·h² values (1 GB for an lstm at T = 1000, h = 256)."""
        share = self.hh_grads[t - 1].T @ self.h_prevs[t - 1]
        return share.to(self.target).to(share.dtype) if self.emulated else share


def run_recurrent_pass(spec: ModelSpec, params: RecurrentParameters, device: torch.device) -> RecurrentPass:
    """Forward over T steps batched over the batch (one Python iteration per step and layer), loss, backward."""
    rec = spec.recurrent
    assert rec is not None
    target = TORCH_DTYPES[spec.dtype]
    emulated = target == torch.float16 and device.type == "cpu"
    compute = torch.float64 if emulated else target
    # detach(): `to` returns the parameters' own tensor where nothing changes; autograd writes only this view's .grad
    w_hh = [w.to(device, compute).detach().requires_grad_(True) for w in params.w_hh]
    w_ih = [w.to(device, compute).detach().requires_grad_(True) for w in params.w_ih]
    bs = [b.to(device, compute) for b in params.biases]
    st = PassState(target, compute, emulated, [], [])
    x = params.x.to(device, compute)
    batch, hdim = spec.batch_size, rec.hidden
    hs = [torch.zeros(batch, hdim, dtype=compute, device=device) for _ in range(rec.stacked)]
    cs = [torch.zeros(batch, hdim, dtype=compute, device=device) if rec.cell == "lstm" else None for _ in hs]
    outputs: list[Tensor] = []
    hh_top: list[Tensor] = []
    h_prev_top: list[Tensor] = []
    lower: list[list[Tensor]] = [[] for _ in range(rec.stacked - 1)]
    act = spec.activations[0]
    for t in range(rec.steps):
        inp = x[t]
        for layer in range(rec.stacked):
            if layer == rec.stacked - 1:
                h_prev_top.append(hs[layer].detach())
            out = cell(rec.cell, act, hs[layer], cs[layer], inp, w_hh[layer], w_ih[layer], bs[layer], st)
            hs[layer], cs[layer] = out.h, out.c
            inp = out.h
            if layer == rec.stacked - 1:
                out.hh.retain_grad()
                hh_top.append(out.hh)
                out.h.retain_grad()
                outputs.append(out.h)
            else:
                lower[layer].append(out.h.detach())
    labels = None if params.labels is None else params.labels.to(device)
    if rec.loss_at == "last":
        loss = st.rnd(_loss(spec.loss, st.rnd(outputs[-1]), labels, device))
    else:
        terms = [
            _loss(spec.loss, st.rnd(o), None if labels is None else labels[t], device) for t, o in enumerate(outputs)
        ]
        loss = st.rnd(torch.stack([st.rnd(v) for v in terms]).sum())
    (st.rnd(loss * spec.loss_scale) if spec.loss_scale != 1.0 else loss).backward()

    def grad_of(w: Tensor) -> Tensor:
        g = w.grad if w.grad is not None else torch.zeros_like(w)
        return (g.to(target).to(compute) if emulated else g).detach()

    grads: dict[str, Tensor] = {}
    for layer in range(rec.stacked):
        grads[f"W_hh^{layer + 1}"] = grad_of(w_hh[layer])
        grads[f"W_ih^{layer + 1}"] = grad_of(w_ih[layer])
    return RecurrentPass(
        loss=float(loss.detach().double()),
        outputs=[o.detach() for o in outputs],
        output_grads=[torch.zeros_like(o) if o.grad is None else o.grad.detach() for o in outputs],
        hh_grads=[torch.zeros_like(a) if a.grad is None else a.grad.detach() for a in hh_top],
        h_prevs=h_prev_top,
        layer_outputs=lower,
        grads=grads,
        emulated=emulated,
        target=target,
    )
