"""The training probe's time against the same training written as a plain torch loop, in the same run on the CPU
(issue 22's target: ≤ 2× at d=20, n=256, 200 steps; never pass/fail on time).

The plain loop: nn.Sequential of nn.Linear + nn.ReLU holding the same weights, the probe's data set and batch
order, the same torch.optim optimizer; zero_grad, forward, loss, backward, step, and the loss read per step (as a
training script logs it). The probe adds its statistics per step and layer (‖∂ℓ/∂W‖, ‖ΔW‖/‖W‖, non-finite counts,
the weights copied before each step), the data set's loss before and after, and the report's assembly. Interleaved
repeats; min and median of each, and the ratio of the medians and of the mins.

    python bench/bench_training.py [--threads N] [--depth 20] [--width 256] [--steps 200] [--batch 8] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from bench_engine import cpu_args

from service.engine.network import make_parameters
from service.engine.spec import ModelSpec
from service.engine.training import make_optimizer, train
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--optimizer", default="sgd", choices=("sgd", "adam", "adamw"))
    ap.add_argument("--repeat", type=int, default=5)
    args = cpu_args(ap)
    spec = ModelSpec(
        widths=(args.width,) * (args.depth + 1),
        activations=("relu",) * args.depth,
        batch_size=args.batch,
        training=TrainingOptions(steps=args.steps, optimizer=args.optimizer, learning_rate=0.01),
    )
    print(
        f"d={args.depth} n={args.width} B={args.batch}, {args.steps} {args.optimizer} steps, float32, "
        f"{torch.get_num_threads()} threads, {args.repeat} interleaved repeats"
    )
    probe_times, loop_times = [], []
    train(spec, make_parameters(spec), CPU)  # warm-up
    plain_loop(spec)
    for _ in range(args.repeat):
        t = time.perf_counter()
        train(spec, make_parameters(spec), CPU)
        probe_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        plain_loop(spec)
        loop_times.append(time.perf_counter() - t)
    for name, times in (("probe", probe_times), ("plain torch loop", loop_times)):
        print(f"  {name:17s} min {min(times) * 1e3:8.1f} ms  median {statistics.median(times) * 1e3:8.1f} ms")
    print(
        f"  probe / plain loop: {statistics.median(probe_times) / statistics.median(loop_times):.2f}× (medians), "
        f"{min(probe_times) / min(loop_times):.2f}× (mins)"
    )


if __name__ == "__main__":
    main()
