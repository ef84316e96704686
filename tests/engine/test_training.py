"""The training probe against plain torch.nn/torch.optim loops with the same network, data order and optimizer,
and its dynamic loss scaling against torch.amp.GradScaler step for step."""

from __future__ import annotations

import hashlib
import math

import pytest
import torch
import torch.nn.functional as F

from schemas.spec import ModelSpecSchema
from service.engine.network import make_parameters
from service.engine.training import train
from service.engine.training_summary import DIVERGENCE_FACTOR, NOT_LEARNED_FRACTION
from service.engine.training_tasks import batch_order, make_task

CPU = torch.device("cpu")
ACT = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}


def _spec(**body):
    return ModelSpecSchema().load(body)


def _torch_optimizer(name: str, params, lr: float, momentum: float):
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    return (torch.optim.Adam if name == "adam" else torch.optim.AdamW)(params, lr=lr)


def _plain_model(spec, dtype):
    """nn.Sequential of nn.Linear + activation modules holding the analysis's initial weights."""
    params = make_parameters(spec)
    mods = []
    for t, (n_in, n_out) in enumerate(zip(spec.widths[:-1], spec.widths[1:], strict=True)):
        lin = torch.nn.Linear(n_in, n_out, bias=spec.bias, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(params.compact_weights[t].to(dtype))
            if spec.bias:
                lin.bias.zero_()
        mods += [lin, ACT[spec.activations[t]]()]
    return torch.nn.Sequential(*mods)


class _PreLNResidual(torch.nn.Module):
    """h ← h + σ(W·LayerNorm(h)) where widths allow (architecture residual every 1, layernorm pre), else
    h ← σ(W·LayerNorm(h)): issue 18's block network written as a torch module."""

    def __init__(self, spec, dtype):
        super().__init__()
        params = make_parameters(spec)
        self.lins = torch.nn.ModuleList()
        self.norms = torch.nn.ModuleList()
        for t, (n_in, n_out) in enumerate(zip(spec.widths[:-1], spec.widths[1:], strict=True)):
            lin = torch.nn.Linear(n_in, n_out, bias=False, dtype=dtype)
            with torch.no_grad():
                lin.weight.copy_(params.compact_weights[t].to(dtype))
            self.lins.append(lin)
            self.norms.append(torch.nn.LayerNorm(n_in, eps=1e-5, elementwise_affine=False, dtype=dtype))

    def forward(self, h):
        for lin, norm in zip(self.lins, self.norms, strict=True):
            f = torch.relu(lin(norm(h)))
            h = h + f if f.shape == h.shape else f
        return h


def _reference_run(spec, model, dtype):
    """The plain loop: zero_grad, forward, loss, backward, step, over the probe's data and batch order."""
    task = make_task(spec)
    tr = spec.training
    x = task.x.to(dtype)
    y = task.targets.to(dtype) if task.loss == "mse" else task.targets
    opt = _torch_optimizer(tr.optimizer, model.parameters(), tr.learning_rate, tr.momentum)
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    losses, grad_norms = [], []
    for idx in batch_order(spec):
        opt.zero_grad()
        out = model(x[idx])
        loss = F.mse_loss(out, y[idx]) if task.loss == "mse" else F.cross_entropy(out, y[idx])
        loss.backward()
        grad_norms.append([float(w.grad.double().norm()) for w in weights])
        opt.step()
        losses.append(float(loss.detach()))
    return losses, grad_norms, [w.detach().double() for w in weights]


CASES = [
    ("sgd", 0.0, "teacher", None),
    ("sgd", 0.9, "classification", None),
    ("adam", 0.0, "teacher", None),
    ("adamw", 0.0, "classification", None),
    ("sgd", 0.5, "teacher", {"residual": {"every": 1}, "normalization": {"kind": "layernorm", "position": "pre"}}),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("optimizer", "momentum", "task", "arch"), CASES)
def test_trajectory_equals_a_plain_torch_loop(dtype, optimizer, momentum, task, arch):
    body = {
        "layers": [5, 12, 12, 12, 3],
        "dtype": dtype,
        "batch_size": 16,
        "seed": 7,
        "training": {
            "steps": 40,
            "optimizer": optimizer,
            "learning_rate": 0.05 if optimizer == "sgd" else 0.01,
            "momentum": momentum,
            "task": task,
            "examples": 100,  # not a multiple of 16: epochs end on a dropped tail
        },
    }
    if arch is not None:
        body["architecture"] = arch
    spec = _spec(**body)
    tdtype = getattr(torch, dtype)
    model = _plain_model(spec, tdtype) if arch is None else _PreLNResidual(spec, tdtype)
    losses, grad_norms, final = _reference_run(spec, model, tdtype)
    rep = train(spec, make_parameters(spec), CPU)
    rtol = 1e-12 if dtype == "float64" else 2e-5
    assert [s.loss for s in rep.steps] == pytest.approx(losses, rel=rtol, abs=rtol)
    for t, layer in enumerate(rep.layers):
        assert layer.grad_norm == pytest.approx([g[t] for g in grad_norms], rel=rtol * 10, abs=1e-12)
        w0 = make_parameters(spec).compact_weights[t].double()
        expected = float((final[t] - w0).norm() / w0.norm())
        assert layer.distance_from_init == pytest.approx(expected, rel=rtol * 100)
    assert not any(s.skipped for s in rep.steps)


def _amp_reference(spec, steps_dtype=torch.float16):
    """torch.amp's pattern on the CPU: float32 master weights, the pass in float16 on their casts, GradScaler."""
    params = make_parameters(spec)
    task = make_task(spec)
    masters = [torch.nn.Parameter(w.float().clone()) for w in params.compact_weights]
    opt = torch.optim.SGD(masters, lr=spec.training.learning_rate)
    scaler = torch.amp.GradScaler("cpu")
    x, y = task.x.to(steps_dtype), task.targets.to(steps_dtype)
    scales, skipped, losses = [], [], []
    for idx in batch_order(spec):
        opt.zero_grad()
        h = x[idx]
        for w, name in zip(masters, spec.activations, strict=True):
            h = getattr(torch, name)(h @ w.to(steps_dtype).T)
        loss = F.mse_loss(h, y[idx])
        scales.append(scaler.get_scale())
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        skipped.append(scaler.get_scale() < scales[-1])
        losses.append(float(loss.detach()))
    return scales, skipped, losses, [m.detach().double() for m in masters]


def _overflowing_float16(steps: int) -> object:
    """ReLU, float16, weights at 1.5× kaiming: S·∂ℓ/∂W overflows float16 at GradScaler's 2^16 start."""
    return _spec(
        layers=[6, 16, 16, 16, 16, 2],
        dtype="float16",
        weight_scale=1.5,
        batch_size=8,
        seed=3,
        training={"steps": steps, "learning_rate": 0.001, "loss_scaling": "dynamic", "examples": 64},
    )


def test_dynamic_loss_scaling_equals_grad_scaler_step_for_step():
    """Native float16 (the kernels torch.amp runs): scale, skipped steps and losses as GradScaler's loop gives."""
    spec = _overflowing_float16(30)
    scales, skipped, losses, final = _amp_reference(spec)
    rep = train(spec, make_parameters(spec), CPU, emulate_float16=False)
    assert any(skipped) and not all(skipped)  # the spec does overflow, and recovers
    assert [s.loss_scale for s in rep.steps] == scales
    assert [s.skipped for s in rep.steps] == skipped
    assert [s.loss for s in rep.steps] == pytest.approx(losses, rel=1e-3)
    assert rep.summary.skipped_steps == [k for k, s in enumerate(skipped) if s]
    assert rep.summary.final_loss_scale == scales[-1] / (2 if skipped[-1] else 1)
    for layer, w in zip(rep.layers, final, strict=True):
        w0 = make_parameters(spec).compact_weights[layer.index - 1].double()
        assert layer.distance_from_init == pytest.approx(float((w - w0).norm() / w0.norm()), rel=1e-3)
    # a skipped step's gradient held inf/NaN somewhere; its update is exactly zero
    for k in rep.summary.skipped_steps:
        assert any(ly.overflow_count[k] > 0 for ly in rep.layers)
        assert all(ly.update_ratio[k] == 0.0 for ly in rep.layers)


def test_emulated_float16_skips_the_same_steps():
    """The CPU's float16 emulation (rounded once from float64) makes the same overflow decisions here."""
    spec = _overflowing_float16(30)
    scales, skipped, _, _ = _amp_reference(spec)
    rep = train(spec, make_parameters(spec), CPU)
    assert [s.skipped for s in rep.steps] == skipped
    assert [s.loss_scale for s in rep.steps] == scales


def test_the_scale_doubles_after_growth_interval_good_steps():
    """GradScaler's growth: 2000 finite steps in a row double S (a tiny net, so 2010 steps are cheap)."""
    spec = _spec(
        layers=[2, 3, 2],
        dtype="float16",
        batch_size=2,
        training={"steps": 2010, "learning_rate": 1e-4, "loss_scaling": "dynamic", "examples": 8},
    )
    scales, skipped, _, _ = _amp_reference(spec)
    rep = train(spec, make_parameters(spec), CPU)
    got = [s.loss_scale for s in rep.steps]
    assert got == scales
    grew = [k for k in range(1, len(got)) if got[k] == 2 * got[k - 1]]
    assert grew  # 2000 finite steps after a skip (or the start), then S doubles
    for k in grew:
        assert not any(skipped[k - 2000 : k]) and (k == 2000 or skipped[k - 2001])


def test_float16_without_loss_scaling_flushes_small_gradients():
    """A deep sigmoid net in float16: unscaled gradients of the bottom layers are flushed to zero (counted), and a
    static loss scale brings them back into the range."""
    body = {
        "layers": [8] + [16] * 12 + [2],
        "activation": "sigmoid",
        "init": "xavier_normal",
        "dtype": "float16",
        "training": {"steps": 3, "learning_rate": 0.1},
    }
    plain = train(_spec(**body), make_parameters(_spec(**body)), CPU)
    assert sum(plain.layers[0].underflow_count) > 0
    scaled_body = body | {"loss_scale": 2.0**14, "training": body["training"] | {"loss_scaling": "static"}}
    scaled = train(_spec(**scaled_body), make_parameters(_spec(**scaled_body)), CPU)
    assert sum(scaled.layers[0].underflow_count) < sum(plain.layers[0].underflow_count)
    assert all(s.loss_scale == 2.0**14 for s in scaled.steps)


def test_teacher_task_is_the_documented_recipe():
    spec = _spec(layers=[3, 5, 2], input_scale=2.0, seed=11, training={"examples": 20, "steps": 1})
    digest = hashlib.sha256(b"gradstab-training:11:teacher").digest()
    gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
    x = torch.randn(20, 3, generator=gen, dtype=torch.float64) * 2.0
    u = torch.randn(3, 3, generator=gen, dtype=torch.float64) / math.sqrt(3)
    v = torch.randn(2, 3, generator=gen, dtype=torch.float64) / math.sqrt(3)
    x = x.float().double()
    task = make_task(spec)
    assert torch.equal(task.x, x)
    assert torch.allclose(task.targets, torch.tanh(x @ u.T) @ v.T)


def test_batches_walk_shuffled_epochs_and_drop_the_tail():
    spec = _spec(layers=[2, 2], batch_size=3, training={"examples": 10, "steps": 6})
    batches = list(batch_order(spec))
    assert [len(b) for b in batches] == [3] * 6
    first_epoch = torch.cat(batches[:3])
    assert len(set(first_epoch.tolist())) == 9  # 3 batches of one permutation, the 10th example dropped


def test_deep_sigmoid_bottom_layers_do_not_learn():
    """SGD on a vanishing net leaves the bottom layers behind (flagged); so does Adam, whose eps (1e-8) dwarfs
    gradients of 1e-10 and below."""
    body = {
        "layers": [8] + [32] * 16 + [4],
        "activation": "sigmoid",
        "init": "xavier_normal",
        "training": {"steps": 60, "learning_rate": 0.5},
    }
    sgd = train(_spec(**body), make_parameters(_spec(**body)), CPU)
    dist = [ly.distance_from_init for ly in sgd.layers]
    best = max(dist)
    assert sgd.summary.not_learning_layers == [
        t for t, d in enumerate(dist, start=1) if d < NOT_LEARNED_FRACTION * best
    ]
    assert 1 in sgd.summary.not_learning_layers and sgd.layers[-1].did_not_learn is False
    assert "did not learn" in sgd.summary.sentence
    adam_body = body | {"training": body["training"] | {"optimizer": "adam", "learning_rate": 0.001}}
    adam = train(_spec(**adam_body), make_parameters(_spec(**adam_body)), CPU)
    assert 1 in adam.summary.not_learning_layers and adam.layers[-1].did_not_learn is False


def test_divergence_and_nonfinite_values_are_null_with_a_reason():
    spec = _spec(
        layers=[4, 32, 32, 32, 2],
        activation="identity",
        training={"steps": 20, "learning_rate": 1.0},
    )
    rep = train(spec, make_parameters(spec), CPU)
    losses = [s.loss for s in rep.steps]
    expected = next(k for k, v in enumerate(losses) if v is None or v > DIVERGENCE_FACTOR * losses[0])
    assert rep.summary.diverged and rep.summary.divergence_step == expected
    for s in rep.steps:
        assert (s.loss is None) == (s.loss_status == "nonfinite")
    for ly in rep.layers:
        for g, n in zip(ly.grad_norm, ly.overflow_count, strict=True):
            assert (g is None) == (n > 0)


def test_histograms_count_every_value_once():
    spec = _spec(layers=[4, 8, 8, 2], dtype="float16", training={"steps": 3, "histograms": [0, 2]})
    rep = train(spec, make_parameters(spec), CPU)
    assert [h.step for h in rep.histograms] == [0, 2]
    info = torch.finfo(torch.float16)
    assert rep.histogram_edges_log10[0] == pytest.approx(math.log10(info.smallest_normal * info.eps))
    assert rep.histogram_edges_log10[-1] == pytest.approx(math.log10(info.max))
    for h in rep.histograms:
        for ly, (n_out, n_in) in zip(h.layers, zip(spec.widths[1:], spec.widths[:-1], strict=True), strict=True):
            assert sum(ly.counts) + ly.zeros + ly.nonfinite == n_out * n_in


def test_the_loss_before_and_after_is_the_first_examples_mean_loss():
    """summary.initial_loss / final_loss: the mean mse of the network on the data set's first 256 examples."""
    spec = _spec(layers=[5, 12, 3], dtype="float64", batch_size=16, training={"steps": 5, "examples": 300})
    model = _plain_model(spec, torch.float64)
    task = make_task(spec)
    with torch.no_grad():
        before = float(F.mse_loss(model(task.x[:256]), task.targets[:256]))
    _reference_run(spec, model, torch.float64)  # trains `model` in place
    with torch.no_grad():
        after = float(F.mse_loss(model(task.x[:256]), task.targets[:256]))
    rep = train(spec, make_parameters(spec), CPU)
    assert rep.summary.initial_loss == pytest.approx(before, rel=1e-12)
    assert rep.summary.final_loss == pytest.approx(after, rel=1e-12)
    assert rep.summary.loss_ratio == pytest.approx(after / before, rel=1e-12)
