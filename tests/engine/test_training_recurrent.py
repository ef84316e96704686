"""The training probe on recurrent specs against torch.nn.RNN/LSTM/GRU + torch.optim loops with the same weights,
data order and optimizer, and its dynamic loss scaling against torch.amp.GradScaler step for step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from schemas.spec import ModelSpecSchema
from service.engine.recurrent import make_recurrent_parameters, torch_module
from service.engine.training import train
from service.engine.training_recurrent import make_recurrent_task, matrix_names
from service.engine.training_tasks import batch_order

CPU = torch.device("cpu")


def _spec(**body):
    return ModelSpecSchema().load(body)


def _trained(model: torch.nn.RNNBase, stacked: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The matrices in the probe's order (W_ih^1, W_hh^1, …) and the biases it trains (bias_ih; bias_hh frozen at 0)."""
    mats, biases = [], []
    for k in range(stacked):
        mats += [getattr(model, f"weight_ih_l{k}"), getattr(model, f"weight_hh_l{k}")]
        biases.append(getattr(model, f"bias_ih_l{k}"))
        getattr(model, f"bias_hh_l{k}").requires_grad_(False)
    return mats, biases


def _optimizer(spec, params):
    tr = spec.training
    if tr.optimizer == "sgd":
        return torch.optim.SGD(params, lr=tr.learning_rate, momentum=tr.momentum)
    return (torch.optim.Adam if tr.optimizer == "adam" else torch.optim.AdamW)(params, lr=tr.learning_rate)


def _output(spec, out: torch.Tensor) -> torch.Tensor:
    """nn.RNN's (T, B, h) top-layer outputs → h_T (B, h) or every h_t (B, T, h)."""
    return out[-1] if spec.recurrent.loss_at == "last" else out.transpose(0, 1)


def _loss(kind: str, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if kind == "mse":
        return F.mse_loss(h, y)
    return F.cross_entropy(h.reshape(-1, h.shape[-1]), y.reshape(-1))


def _reference_run(spec, dtype):
    """The plain loop on torch.nn.RNN/LSTM/GRU: zero_grad, forward, loss, backward, step."""
    params = make_recurrent_parameters(spec)
    model = torch_module(spec, params, dtype)
    mats, biases = _trained(model, spec.recurrent.stacked)
    opt = _optimizer(spec, [*mats, *biases])
    task = make_recurrent_task(spec)
    x = task.x.to(dtype)
    y = task.targets.to(dtype) if task.loss == "mse" else task.targets
    losses, grad_norms = [], []
    for idx in batch_order(spec):
        opt.zero_grad()
        out, _ = model(x[idx].transpose(0, 1))
        loss = _loss(task.loss, _output(spec, out), y[idx])
        loss.backward()
        grad_norms.append([float(w.grad.double().norm()) for w in mats])
        opt.step()
        losses.append(float(loss.detach()))
    w0 = [w.double() for k in range(spec.recurrent.stacked) for w in (params.w_ih[k], params.w_hh[k])]
    return losses, grad_norms, [w.detach().double() for w in mats], w0


CASES = [
    ("rnn", "tanh", 1, "last", "sgd", 0.0, "teacher"),
    ("rnn", "relu", 2, "every", "sgd", 0.9, "classification"),
    ("lstm", "tanh", 1, "every", "adam", 0.0, "teacher"),
    ("lstm", "tanh", 2, "last", "sgd", 0.5, "classification"),
    ("gru", "tanh", 2, "every", "adamw", 0.0, "teacher"),
    ("gru", "tanh", 1, "last", "sgd", 0.0, "classification"),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("cell", "act", "stacked", "loss_at", "optimizer", "momentum", "task"), CASES)
def test_trajectory_equals_a_torch_nn_rnn_loop(dtype, cell, act, stacked, loss_at, optimizer, momentum, task):
    spec = _spec(
        recurrent={"cell": cell, "steps": 7, "hidden": 6, "input_dim": 3, "stacked": stacked, "loss_at": loss_at},
        activation=act,
        dtype=dtype,
        batch_size=5,
        seed=11,
        training={
            "steps": 25,
            "optimizer": optimizer,
            "learning_rate": 0.1 if optimizer == "sgd" else 0.01,
            "momentum": momentum,
            "task": task,
            "examples": 23,  # not a multiple of 5: epochs end on a dropped tail
        },
    )
    tdtype = getattr(torch, dtype)
    losses, grad_norms, final, w0 = _reference_run(spec, tdtype)
    rep = train(spec, make_recurrent_parameters(spec), CPU)
    rtol = 1e-11 if dtype == "float64" else 1e-4
    assert [s.loss for s in rep.steps] == pytest.approx(losses, rel=rtol, abs=rtol)
    assert [ly.matrix for ly in rep.layers] == matrix_names(spec)
    assert len(rep.layers) == 2 * stacked
    for t, layer in enumerate(rep.layers):
        assert layer.grad_norm == pytest.approx([g[t] for g in grad_norms], rel=rtol * 10, abs=1e-12)
        expected = float((final[t] - w0[t]).norm() / w0[t].norm())
        assert layer.distance_from_init == pytest.approx(expected, rel=rtol * 100)
    assert not any(s.skipped for s in rep.steps)


def _overflowing_float16(steps: int):
    """A relu rnn at 1.4× its init over 10 steps: S·∂ℓ/∂W overflows float16 at GradScaler's 2^16 start."""
    return _spec(
        recurrent={"cell": "rnn", "steps": 10, "hidden": 8, "input_dim": 4},
        activation="relu",
        weight_scale=1.4,
        dtype="float16",
        batch_size=8,
        seed=5,
        training={"steps": steps, "learning_rate": 0.001, "loss_scaling": "dynamic", "examples": 64},
    )


def _amp_reference(spec):
    """torch.amp's pattern on the CPU: float32 master weights of a torch.nn.RNN, its pass in native float16 on their
    casts (functional_call), torch.amp.GradScaler."""
    params = make_recurrent_parameters(spec)
    model = torch_module(spec, params, torch.float16)
    names = [n for n, _ in model.named_parameters() if not n.startswith("bias_hh")]
    masters = {n: torch.nn.Parameter(p.detach().float().clone()) for n, p in model.named_parameters() if n in names}
    frozen = {n: p.detach() for n, p in model.named_parameters() if n.startswith("bias_hh")}
    opt = torch.optim.SGD(list(masters.values()), lr=spec.training.learning_rate)
    scaler = torch.amp.GradScaler("cpu")
    task = make_recurrent_task(spec)
    x, y = task.x.half(), task.targets.half()
    scales, skipped, losses = [], [], []
    for idx in batch_order(spec):
        opt.zero_grad()
        weights = {n: m.half() for n, m in masters.items()} | frozen
        out, _ = functional_call(model, weights, (x[idx].transpose(0, 1),))
        loss = F.mse_loss(_output(spec, out), y[idx])
        scales.append(scaler.get_scale())
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        skipped.append(scaler.get_scale() < scales[-1])
        losses.append(float(loss.detach()))
    return scales, skipped, losses


def test_dynamic_loss_scaling_equals_grad_scaler_step_for_step():
    """Native float16: the loss scale and skipped steps of a GradScaler loop on torch.nn.RNN, step for step."""
    spec = _overflowing_float16(30)
    scales, skipped, losses = _amp_reference(spec)
    rep = train(spec, make_recurrent_parameters(spec), CPU, emulate_float16=False)
    assert any(skipped) and not all(skipped)  # the spec does overflow, and recovers
    assert [s.loss_scale for s in rep.steps] == scales
    assert [s.skipped for s in rep.steps] == skipped
    assert [s.loss for s in rep.steps] == pytest.approx(losses, rel=2e-2)
    for k in rep.summary.skipped_steps:  # a skipped step held inf/NaN somewhere; its update is exactly zero
        assert any(ly.overflow_count[k] > 0 for ly in rep.layers)
        assert all(ly.update_ratio[k] == 0.0 for ly in rep.layers)
    emulated = train(spec, make_recurrent_parameters(spec), CPU)  # the CPU's emulation decides the same
    assert [s.skipped for s in emulated.steps] == skipped


def test_teacher_targets_are_a_recurrent_teachers_outputs():
    """The teacher task's targets: h_T (last) and every h_t (every) of one seeded sequence, consistent."""
    body = {"recurrent": {"cell": "gru", "steps": 5, "hidden": 4, "input_dim": 3}, "training": {"examples": 16}}
    last = make_recurrent_task(_spec(**body))
    every = make_recurrent_task(_spec(**body | {"recurrent": body["recurrent"] | {"loss_at": "every"}}))
    assert last.x.shape == (16, 5, 3) and last.targets.shape == (16, 4)
    assert every.targets.shape == (16, 5, 4)
    assert torch.equal(every.targets[:, -1], last.targets) and torch.equal(every.x, last.x)
    again = make_recurrent_task(_spec(**body))
    assert torch.equal(again.targets, last.targets)  # made from the seed


def test_fixes_of_a_recurrent_spec_are_judged_by_training():
    """An exploding relu rnn diverges in training; each verified fix reruns the probe (verified, with what it gave)
    or, past the reruns' shared budget, says not_verified and claims nothing."""
    from service.engine.analysis import analyze

    spec = _spec(
        recurrent={"cell": "rnn", "steps": 20, "hidden": 16, "input_dim": 4},
        activation="relu",
        weight_scale=1.3,
        training={"steps": 30, "learning_rate": 0.3, "examples": 64},
    )
    rep = analyze(spec)
    assert rep.training.summary.diverged
    checks = [r.verified.training for r in rep.diagnosis.recommendations if r.verified is not None]
    assert checks and all(c is not None for c in checks)
    verified = [c for c in checks if c.status == "verified"]
    assert verified and any(c.all_learn and not c.diverged for c in verified)
    for c in checks:
        if c.status == "not_verified":
            assert c.all_learn is None and c.not_learning_layers is None and c.loss_ratio is None


def test_the_readme_example_trains_both_matrices():
    """examples/specs/rnn_tanh_training_T100.json, as the README tells it: both matrices move a fifth or more of their
    size from init, none is flagged, and the loss falls but not far (W_hh learns the short-range map only)."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "specs" / "rnn_tanh_training_T100.json"
    spec = _spec(**json.loads(path.read_text()))
    rep = train(spec, make_recurrent_parameters(spec), CPU)
    w_ih, w_hh = rep.layers
    assert (w_ih.matrix, w_hh.matrix) == ("W_ih^1", "W_hh^1")
    assert w_ih.distance_from_init == pytest.approx(0.22, abs=0.01)
    assert w_hh.distance_from_init == pytest.approx(0.27, abs=0.01)
    assert rep.summary.not_learning_layers == [] and not rep.summary.diverged
    assert 0.6 < rep.summary.loss_ratio < 0.8
