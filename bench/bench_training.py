"""The training probe's time against the same training written as a plain torch loop, in the same run on the CPU
(issue 22's target: ≤ 2× at d=20, n=256, 200 steps; never pass/fail on time).

The plain loop: nn.Sequential of nn.Linear + nn.ReLU holding the same weights, the probe's data set and batch
order, the same torch.optim optimizer; zero_grad, forward, loss, backward, step, and the loss read per step (as a
training script logs it). The probe adds its statistics per step and layer (‖∂ℓ/∂W‖, ‖ΔW‖/‖W‖, non-finite counts,
the weights copied before each step), the data set's loss before and after, and the report's assembly. Interleaved
repeats; min and median of each, and the ratio of the medians and of the mins.

    python bench/bench_training.py [--threads N] [--depth 20] [--width 256] [--steps 200] [--batch 8] [--repeat 5]

With --recurrent CELL (rnn, lstm, gru) the network is that cell unrolled over --time steps of --width hidden units
(--depth stacked layers), and the plain loop is torch.nn.RNN/LSTM/GRU holding the same weights (its bias_hh frozen
at 0, as the probe has one bias per gate), the probe's sequence task and batch order, the same optimizer.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from bench_engine import cpu_args

from service.engine.network import make_parameters
from service.engine.recurrent import make_recurrent_parameters, torch_module
from service.engine.spec import ModelSpec, Recurrent, recurrent_widths
from service.engine.training import make_optimizer, train
from service.engine.training_recurrent import make_recurrent_task
from service.engine.training_spec import TrainingOptions
from service.engine.training_tasks import batch_order, make_task

CPU = torch.device("cpu")


def plain_loop(spec: ModelSpec) -> float:
    """The same training as a plain torch script; returns the last loss."""
    params = make_parameters(spec)
    mods: list[torch.nn.Module] = []
    for w in params.compact_weights:
        lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
        with torch.no_grad():
            lin.weight.copy_(w)
        mods += [lin, torch.nn.ReLU()]
    model = torch.nn.Sequential(*mods)
    task = make_task(spec)
    x, y = task.x.float(), task.targets.float()
    opt = make_optimizer(spec, list(model.parameters()))
    loss_value = 0.0
    for idx in batch_order(spec):
        opt.zero_grad()
        loss = F.mse_loss(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        loss_value = loss.item()
    return loss_value


def recurrent_loop(spec: ModelSpec) -> float:
    """The same training on torch.nn.RNN/LSTM/GRU; returns the last loss."""
    assert spec.recurrent is not None
    model = torch_module(spec, make_recurrent_parameters(spec), torch.float32)
    trained = []
    for k in range(spec.recurrent.stacked):
        trained += [
            getattr(model, f"weight_ih_l{k}"),
            getattr(model, f"weight_hh_l{k}"),
            getattr(model, f"bias_ih_l{k}"),
        ]
        getattr(model, f"bias_hh_l{k}").requires_grad_(False)
    task = make_recurrent_task(spec)
    x, y = task.x.float(), task.targets.float()
    opt = make_optimizer(spec, trained)
    loss_value = 0.0
    for idx in batch_order(spec):
        opt.zero_grad()
        out, _ = model(x[idx].transpose(0, 1))
        h = out[-1] if spec.recurrent.loss_at == "last" else out.transpose(0, 1)
        loss = F.mse_loss(h, y[idx])
        loss.backward()
        opt.step()
        loss_value = loss.item()
    return loss_value


def _params(spec: ModelSpec) -> object:
    return make_recurrent_parameters(spec) if spec.recurrent is not None else make_parameters(spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--optimizer", default="sgd", choices=("sgd", "adam", "adamw"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--recurrent", choices=("rnn", "lstm", "gru"), help="a recurrent cell instead of the ReLU MLP")
    ap.add_argument("--time", type=int, default=100, help="--recurrent: the steps T the cell is unrolled over")
    args = cpu_args(ap)
    training = TrainingOptions(steps=args.steps, optimizer=args.optimizer, learning_rate=0.01)
    if args.recurrent:
        rec = Recurrent(cell=args.recurrent, steps=args.time, hidden=args.width, input_dim=32, stacked=args.depth)
        spec = ModelSpec(
            widths=recurrent_widths(rec),
            activations=("tanh",) * args.time,
            batch_size=args.batch,
            recurrent=rec,
            training=training,
        )
        shape, loop = f"{args.recurrent} T={args.time} h={args.width} stacked={args.depth}", recurrent_loop
    else:
        spec = ModelSpec(
            widths=(args.width,) * (args.depth + 1),
            activations=("relu",) * args.depth,
            batch_size=args.batch,
            training=training,
        )
        shape, loop = f"d={args.depth} n={args.width}", plain_loop
    print(
        f"{shape} B={args.batch}, {args.steps} {args.optimizer} steps, float32, "
        f"{torch.get_num_threads()} threads, {args.repeat} interleaved repeats"
    )
    probe_times, loop_times = [], []
    train(spec, _params(spec), CPU)  # warm-up
    loop(spec)
    for _ in range(args.repeat):
        t = time.perf_counter()
        train(spec, _params(spec), CPU)
        probe_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        loop(spec)
        loop_times.append(time.perf_counter() - t)
    for name, times in (("probe", probe_times), ("plain torch loop", loop_times)):
        print(f"  {name:17s} min {min(times) * 1e3:8.1f} ms  median {statistics.median(times) * 1e3:8.1f} ms")
    print(
        f"  probe / plain loop: {statistics.median(probe_times) / statistics.median(loop_times):.2f}× (medians), "
        f"{min(probe_times) / min(loop_times):.2f}× (mins)"
    )


if __name__ == "__main__":
    main()
