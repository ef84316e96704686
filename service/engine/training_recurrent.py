"""The training probe on a recurrent spec: its synthetic sequence tasks, its trainable matrices and its forward.

The loop, optimizer, loss scaling and statistics are training.py's; this module supplies what differs:

- Trainables: per stacked layer l, W_ih^l then W_hh^l (torch's weight_ih_l{l-1}, weight_hh_l{l-1}), each an entry
  of the report's training.layers[] (index 1..2·stacked, `matrix` names it), and the layer's one bias b^l
  (recurrent.py's b_ih; b_hh stays 0 and is not trained), trained but not reported, as feed-forward biases.
- Forward: recurrent.cell (the analysis's own cell equations, rounded to the dtype through network.PassState, float16
  emulated on the CPU as the analysis does) over the T steps of every stacked layer from h_0 = c_0 = 0, batched over
  the batch. The output is the top layer's h_T (loss_at last) or h_1..h_T (loss_at every; the loss is then the mean
  over steps, so one learning rate means the same for last and every).
- Tasks (each stream seeded by training_tasks.stream_generator, so never the analysis's draws):
  teacher (mse): x ~ N(0, input_scale²) of shape (examples, T, input_dim); a random one-layer teacher of the spec's
  cell, activation, input_dim and hidden (W_hh per gate block ~ N(0, 1/hidden), W_ih ~ N(0, 1/input_dim), zero
  biases) runs in float64 from h_0 = 0, and the targets are its h_T (last) or every h_t (every): targets of the
  student's top-layer width and scale that depend on the sequence's history.
  classification (cross_entropy, hidden ≥ 2 classes: the top layer's h is the logits): one centre sequence per class,
  c_k ~ N(0, input_scale²) of shape (T, input_dim), labels uniform, x = (c_label + ε)/√2 with ε ~ N(0, input_scale²);
  loss_at every asks for the sequence's label at every step.
Inputs are rounded to the pass dtype once; batches are training_tasks.batch_order's (shuffled epochs, tail dropped).
"""

from __future__ import annotations

import math

import torch

from .network import PassState
from .recurrent import GATES, RecurrentParameters, cell
from .spec import ModelSpec
from .training_tasks import Task, rounded, stream_generator

Tensor = torch.Tensor


def matrix_names(spec: ModelSpec) -> list[str]:
    """The report's names of the trainable matrices, in training.layers[] order (recurrent_analysis's spelling)."""
    assert spec.recurrent is not None
    return [f"W_{kind}^{layer}" for layer in range(1, spec.recurrent.stacked + 1) for kind in ("ih", "hh")]


def trainables(params: RecurrentParameters) -> tuple[list[Tensor], list[Tensor | None]]:
    """(weights, biases) in training order: [W_ih^1, W_hh^1, W_ih^2, …] and b^l beside W_ih^l (None beside W_hh^l)."""
    weights: list[Tensor] = []
    biases: list[Tensor | None] = []
    for w_ih, w_hh, b in zip(params.w_ih, params.w_hh, params.biases, strict=True):
        weights += [w_ih, w_hh]
        biases += [b, None]
    return weights, biases


def recurrent_forward(spec: ModelSpec, st: PassState, x: Tensor) -> Tensor:
    """x (B, T, input_dim) → the top layer's h_T (B, hidden) or h_1..h_T (B, T, hidden), in the compute dtype."""
    rec = spec.recurrent
    assert rec is not None
    batch = x.shape[0]
    zeros = x.new_zeros(batch, rec.hidden)
    hs = [zeros] * rec.stacked
    cs: list[Tensor | None] = [zeros if rec.cell == "lstm" else None] * rec.stacked
    act = spec.activations[0]
    outs = []
    for t in range(rec.steps):
        inp = x[:, t]
        for layer in range(rec.stacked):
            w_ih, w_hh, b = st.weights[2 * layer], st.weights[2 * layer + 1], st.biases[2 * layer]
            assert b is not None
            out = cell(rec.cell, act, hs[layer], cs[layer], inp, w_hh, w_ih, b, st)
            hs[layer], cs[layer], inp = out.h, out.c, out.h
        if rec.loss_at == "every":
            outs.append(inp)
    return torch.stack(outs, dim=1) if rec.loss_at == "every" else hs[-1]


def make_recurrent_task(spec: ModelSpec) -> Task:
    """The data set of spec.training.task for a recurrent spec (see the module docstring)."""
    rec, tr = spec.recurrent, spec.training
    assert rec is not None and tr is not None
    gen = stream_generator(spec.seed, f"recurrent-{tr.task}")
    f64 = torch.float64
    shape = (tr.examples, rec.steps, rec.input_dim)
    if tr.task == "teacher":
        x = rounded(torch.randn(*shape, generator=gen, dtype=f64) * spec.input_scale, spec.dtype)
        g, h = GATES[rec.cell], rec.hidden
        w_hh = torch.randn(g * h, h, generator=gen, dtype=f64) / math.sqrt(h)
        w_ih = torch.randn(g * h, rec.input_dim, generator=gen, dtype=f64) / math.sqrt(rec.input_dim)
        b = torch.zeros(g * h, dtype=f64)
        hid = torch.zeros(tr.examples, h, dtype=f64)
        c = hid if rec.cell == "lstm" else None
        outs = []
        for t in range(rec.steps):
            out = cell(rec.cell, spec.activations[0], hid, c, x[:, t], w_hh, w_ih, b)
            hid, c = out.h, out.c
            outs.append(hid)
        return Task(x, torch.stack(outs, dim=1) if rec.loss_at == "every" else hid, "mse")
    centres = torch.randn(rec.hidden, rec.steps, rec.input_dim, generator=gen, dtype=f64) * spec.input_scale
    labels = torch.randint(0, rec.hidden, (tr.examples,), generator=gen)
    noise = torch.randn(*shape, generator=gen, dtype=f64) * spec.input_scale
    x = rounded((centres[labels] + noise) / math.sqrt(2.0), spec.dtype)
    return Task(x, labels[:, None].expand(-1, rec.steps).clone() if rec.loss_at == "every" else labels, "cross_entropy")
