"""The training probe's synthetic tasks and data order, made from the spec's seed (pure torch, CPU, float64).

Each stream has its own generator, seeded by sha256("gradstab-training:{seed}:{stream}"), so the task, the batch
order and the analysis's own draws (network.layer_seed) never share numbers:

- teacher (loss mse): x ~ N(0, input_scale²) of shape (examples, n_0); the targets are a random two-layer tanh
  network's outputs y = V·tanh(U·x), U (m, n_0) ~ N(0, 1/n_0), V (n_d, m) ~ N(0, 1/m), m = max(n_0, n_d): targets
  of order one that a deep net can fit but not trivially.
- classification (loss cross_entropy): n_d class centres c_k ~ N(0, input_scale²·I), labels uniform over the
  classes, x = (c_label + ε)/√2 with ε ~ N(0, input_scale²·I), so x has the same scale as the analysis's inputs.

Inputs are rounded to the pass dtype once (as the analysis's inputs are). Batches: step k takes the next
batch_size examples of a seeded permutation; an epoch's tail shorter than a batch is dropped and a new permutation
starts (torch's DataLoader with shuffle=True, drop_last=True).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .network import TORCH_DTYPES
from .spec import ModelSpec

Tensor = torch.Tensor
LOSS_OF_TASK = {"teacher": "mse", "classification": "cross_entropy"}


@dataclass(frozen=True)
class Task:
    x: Tensor  # (examples, n_0), float64 holding values of the pass dtype
    targets: Tensor  # teacher: (examples, n_d) float64; classification: (examples,) int64 labels
    loss: str  # mse | cross_entropy


def stream_generator(seed: int, stream: str) -> torch.Generator:
    digest = hashlib.sha256(f"gradstab-training:{seed}:{stream}".encode()).digest()
    return torch.Generator(device="cpu").manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def make_task(spec: ModelSpec) -> Task:
    """The data set of spec.training.task (see the module docstring)."""
    assert spec.training is not None
    n_0, n_d, examples = spec.widths[0], spec.widths[-1], spec.training.examples
    gen = stream_generator(spec.seed, spec.training.task)
    f64 = torch.float64
    if spec.training.task == "teacher":
        x = torch.randn(examples, n_0, generator=gen, dtype=f64) * spec.input_scale
        m = max(n_0, n_d)
        u = torch.randn(m, n_0, generator=gen, dtype=f64) / math.sqrt(n_0)
        v = torch.randn(n_d, m, generator=gen, dtype=f64) / math.sqrt(m)
        x = rounded(x, spec.dtype)
        return Task(x, torch.tanh(x @ u.T) @ v.T, "mse")
    centres = torch.randn(n_d, n_0, generator=gen, dtype=f64) * spec.input_scale
    labels = torch.randint(0, n_d, (examples,), generator=gen)
    noise = torch.randn(examples, n_0, generator=gen, dtype=f64) * spec.input_scale
    return Task(rounded((centres[labels] + noise) / math.sqrt(2.0), spec.dtype), labels, "cross_entropy")


def batch_order(spec: ModelSpec) -> Iterator[Tensor]:
    """The example indices of each step, in order (shuffled epochs, the short tail dropped)."""
    assert spec.training is not None
    examples, batch = spec.training.examples, spec.batch_size
    gen = stream_generator(spec.seed, "batches")
    perm, pos = torch.randperm(examples, generator=gen), 0
    for _ in range(spec.training.steps):
        if pos + batch > examples:
            perm, pos = torch.randperm(examples, generator=gen), 0
        yield perm[pos : pos + batch]
        pos += batch


def rounded(x: Tensor, dtype: str) -> Tensor:
    return x.to(TORCH_DTYPES[dtype]).to(torch.float64)
