"""What a spec's `training` field asks for: k optimizer steps on a synthetic task (plain values, no torch).

`schemas.training.TrainingSchema` loads the wire form into `TrainingOptions` and owns the limits; the defaults here
are the wire defaults. The probe itself is `service.engine.training`.
"""

from __future__ import annotations

from dataclasses import dataclass

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw")
TASKS: tuple[str, ...] = ("teacher", "classification")
LOSS_SCALINGS: tuple[str, ...] = ("none", "static", "dynamic")


@dataclass(frozen=True)
class TrainingOptions:
    """k steps of a torch.optim optimizer (its own defaults beyond lr and momentum) on a task made from the seed.

    teacher: regression (mse) onto a random network of the spec's input and output widths; classification:
    seeded Gaussian clusters, one per output unit, cross_entropy. loss_scaling: none (scale 1), static (the spec's
    loss_scale, every step taken), dynamic (torch.amp.GradScaler with its defaults: start at 2^16, skip a step whose
    gradients are not finite and halve, double after 2000 good steps in a row).
    """

    steps: int = 100
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.0
    task: str = "teacher"
    examples: int = 1024
    loss_scaling: str = "none"
    histograms: tuple[int, ...] = ()
