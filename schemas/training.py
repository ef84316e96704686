"""The spec's optional `training` field on the wire → `service.engine.training_spec.TrainingOptions`.

Defaults are the dataclass's; the per-request limits on steps, examples and histograms are `schemas.limits.Limits`
(GRADSTAB_MAX_TRAINING_STEPS …), checked in `schemas.spec.check_limits` with the spec's other limits.
"""

from __future__ import annotations

from dataclasses import MISSING
from dataclasses import fields as dataclass_fields
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from service.engine.training_spec import LOSS_SCALINGS, OPTIMIZERS, TASKS, TrainingOptions

from .fields import StrictFloat, StrictSchema

TRAINING = {f.name: f.default for f in dataclass_fields(TrainingOptions) if f.default is not MISSING}
TRAINING_EXAMPLE = {
    "steps": 100,
    "optimizer": "sgd",
    "learning_rate": 0.01,
    "momentum": 0.0,
    "task": "teacher",
    "examples": 1024,
    "loss_scaling": "dynamic",
    "histograms": [0, 10, 99],
}


class TrainingSchema(StrictSchema):
    steps = fields.Integer(
        strict=True,
        load_default=TRAINING["steps"],
        validate=validate.Range(min=1),
        metadata={
            "description": f"Optimizer steps k (default {TRAINING['steps']}; at most GRADSTAB_MAX_TRAINING_STEPS)."
        },
    )
    optimizer = fields.String(
        load_default=TRAINING["optimizer"],
        validate=validate.OneOf(OPTIMIZERS),
        metadata={
            "description": "torch.optim.SGD (with momentum), Adam or AdamW with torch's defaults for everything but "
            f"the learning rate (default {TRAINING['optimizer']})."
        },
    )
    learning_rate = StrictFloat(
        load_default=TRAINING["learning_rate"],
        validate=validate.Range(min=0, min_inclusive=False, max=1e6),
        metadata={"description": f"The optimizer's lr (default {TRAINING['learning_rate']:g})."},
    )
    momentum = StrictFloat(
        load_default=TRAINING["momentum"],
        validate=validate.Range(min=0, max=1, max_inclusive=False),
        metadata={"description": f"SGD's momentum (default {TRAINING['momentum']:g}); sgd only."},
    )
    task = fields.String(
        load_default=TRAINING["task"],
        validate=validate.OneOf(TASKS),
        metadata={
            "description": "teacher (default): mse regression onto a random two-layer tanh network of the spec's "
            "input and output widths; classification: cross_entropy on seeded Gaussian clusters, one class per "
            "output unit (needs ≥ 2 outputs). Both made from the spec's seed; inputs at the spec's input_scale."
        },
    )
    examples = fields.Integer(
        strict=True,
        load_default=TRAINING["examples"],
        validate=validate.Range(min=1),
        metadata={
            "description": f"The data set's size (default {TRAINING['examples']}; at least batch_size, at most "
            "GRADSTAB_MAX_TRAINING_EXAMPLES); each step takes the next batch_size examples of a seeded permutation, "
            "a new permutation per epoch."
        },
    )
    loss_scaling = fields.String(
        load_default=TRAINING["loss_scaling"],
        validate=validate.OneOf(LOSS_SCALINGS),
        metadata={
            "description": "none (default): scale 1; static: the spec's loss_scale, every step taken; dynamic: "
            "torch.amp.GradScaler's rule and defaults (start 2^16, a step with non-finite gradients is skipped and "
            "halves the scale, 2000 good steps in a row double it)."
        },
    )
    histograms = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=0)),
        load_default=list,
        metadata={
            "description": "Steps (0-based, < steps, at most GRADSTAB_MAX_TRAINING_HISTOGRAMS of them) at which to "
            "return each layer's histogram of log10|g| over fixed bins spanning the pass dtype's range, g the "
            "gradient as the dtype holds it (loss-scaled), zeros and non-finite values counted apart."
        },
    )

    @validates_schema
    def _cross_field(self, data: dict[str, Any], **kwargs: Any) -> None:
        steps = data.get("steps", TRAINING["steps"])
        late = [s for s in data.get("histograms", []) if s >= steps]
        if late:
            raise ValidationError(
                f"Histogram steps {late} are not below steps={steps} (steps count from 0).", "histograms"
            )
        if data.get("momentum", 0.0) != 0.0 and data.get("optimizer", TRAINING["optimizer"]) != "sgd":
            raise ValidationError(
                "momentum applies to optimizer sgd only (adam and adamw use their betas).", "momentum"
            )

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> TrainingOptions:
        data["histograms"] = tuple(sorted(set(data["histograms"])))
        return TrainingOptions(**data)
