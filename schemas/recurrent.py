"""A recurrent spec on the wire (issue 21): `recurrent`'s members, what it cannot combine with, and its limits.

`schemas.spec.ModelSpecSchema` takes `recurrent` instead of `layers` and calls these; defaults are the engine's
`service.engine.spec.Recurrent` dataclass defaults, read once.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, post_load, validate

from service.engine.cost import estimate_cost, predict_time
from service.engine.cost_training import training_flops
from service.engine.spec import CELLS, LOSS_AT, RECURRENT_ACTIVATION, RNN_ACTIVATIONS, ModelSpec, Recurrent

from .fields import StrictFloat, StrictSchema
from .limits import Limits

RECURRENT = {name: getattr(Recurrent, name) for name in Recurrent.__dataclass_fields__}


class RecurrentSchema(StrictSchema):
    cell = fields.String(
        load_default=RECURRENT["cell"],
        validate=validate.OneOf(CELLS),
        metadata={
            "description": "rnn: h_s = σ(W_hh h_{s−1} + W_xh x_s + b) with σ from activation (default "
            f"{RECURRENT_ACTIVATION}); lstm, gru: torch.nn.LSTM's and GRU's equations (their own sigmoid and tanh). "
            f"Default {RECURRENT['cell']}."
        },
    )
    steps = fields.Integer(
        strict=True,
        load_default=RECURRENT["steps"],
        validate=validate.Range(min=1),
        metadata={"description": f"Time steps T (default {RECURRENT['steps']}); the report's per-step list."},
    )
    hidden = fields.Integer(
        strict=True,
        load_default=RECURRENT["hidden"],
        validate=validate.Range(min=1),
        metadata={"description": f"Hidden units per layer (default {RECURRENT['hidden']})."},
    )
    input_dim = fields.Integer(
        strict=True,
        load_default=RECURRENT["input_dim"],
        validate=validate.Range(min=1),
        metadata={
            "description": f"Input units at every step (default {RECURRENT['input_dim']}), x_s ~ N(0, "
            "input_scale²) drawn independently per step."
        },
    )
    stacked = fields.Integer(
        strict=True,
        load_default=RECURRENT["stacked"],
        validate=validate.Range(min=1),
        metadata={"description": f"Recurrent layers stacked in depth (default {RECURRENT['stacked']})."},
    )
    loss_at = fields.String(
        load_default=RECURRENT["loss_at"],
        validate=validate.OneOf(LOSS_AT),
        metadata={
            "description": "last: ℓ on the top layer's h_T only (the long-range case); every: ℓ summed over the "
            f"top layer's h_1..h_T. Default {RECURRENT['loss_at']}."
        },
    )
    forget_bias = StrictFloat(
        load_default=RECURRENT["forget_bias"],
        validate=validate.Range(min=-100, max=100),
        metadata={
            "description": "lstm: the forget gate's bias; gru: the update gate z's bias (h' = (1−z)n + z h, so it "
            f"keeps the state); ignored by rnn. Default {RECURRENT['forget_bias']:g} (torch's); 1 is the usual "
            "LSTM choice (Jozefowicz et al. 2015). Every other bias is 0 at init."
        },
    )

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Recurrent:
        return Recurrent(**data)


RECURRENT_EXAMPLE = {"cell": "rnn", "steps": 200, "hidden": 128, "input_dim": 32, "stacked": 1, "loss_at": "last"}


def one_of_layers_recurrent(data: dict[str, Any], widths: Any) -> None:
    if widths is None and data.get("recurrent") is None:
        raise ValidationError("Give layers (a feed-forward network) or recurrent (a recurrent one).", "layers")
    if widths is not None and data.get("recurrent") is not None:
        raise ValidationError("Give exactly one of layers and recurrent, not both.", "recurrent")


def check_recurrent(data: dict[str, Any], rec: Recurrent) -> None:
    """What a recurrent spec cannot combine with: residual/normalisation, a non-rnn σ, an σ list."""
    if data.get("architecture") is not None:
        raise ValidationError(
            "architecture (residual blocks, normalisation) applies to layers, not to a recurrent spec.", "architecture"
        )
    act = data.get("activation")
    if act is not None and not isinstance(act, str):
        raise ValidationError(
            "A recurrent spec takes one activation name (the rnn cell's σ), not a list.", "activation"
        )
    if rec.cell != "rnn" and act is not None and act != RECURRENT_ACTIVATION:
        raise ValidationError(
            f"The {rec.cell} cell uses its own sigmoid gates and tanh; activation applies to the rnn cell only.",
            "activation",
        )
    if rec.cell == "rnn" and act is not None and act not in RNN_ACTIVATIONS:
        raise ValidationError(
            f"{act!r} is not available for the rnn cell; choose from {', '.join(RNN_ACTIVATIONS)}.", "activation"
        )
    if data.get("loss") == "cross_entropy" and rec.hidden < 2:
        raise ValidationError("cross_entropy needs at least 2 output units (recurrent.hidden).", "loss")


def check_recurrent_limits(spec: ModelSpec, limits: Limits, add: Any, errors: dict[str, list[str]]) -> dict:
    """check_limits for a recurrent spec: steps, hidden, stacked, then its own cost model's work, memory and time."""
    rec = spec.recurrent
    assert rec is not None
    add("recurrent", "steps", rec.steps, "max_steps")
    add("recurrent", "hidden", rec.hidden, "max_hidden")
    add("recurrent", "input_dim", rec.input_dim, "max_width")
    add("recurrent", "stacked", rec.stacked, "max_stacked")
    add("batch_size", "batch_size", spec.batch_size, "max_batch_size")
    add("jacobian", "probes", spec.jacobian.probes, "max_probes")
    add("jacobian", "power_iterations", spec.jacobian.power_iterations, "max_power_iterations")
    if spec.training is not None:
        add("training.steps", "training.steps", spec.training.steps, "max_training_steps")
        add("training.examples", "training.examples", spec.training.examples, "max_training_examples")
        add("training.histograms", "histograms", len(spec.training.histograms), "max_training_histograms")
    if errors:
        return errors
    cost = estimate_cost(spec, limits.auto_exact_gflop)
    hint = (
        "; the work grows with batch_size × steps × hidden² (× hidden for the exact method), so fewer steps, a "
        'smaller batch_size or hidden fits here, or submit the same spec as POST /v1/jobs {"analysis": spec}'
    )
    field = "recurrent"
    if spec.training is not None and training_flops(spec) / 1e9 > cost.gflop / 2:  # mostly the probe's steps
        field = "training.steps"
        hint = "; mostly training steps: fewer training.steps, recurrent.steps or batch_size, or POST /v1/jobs"
    add(field, "estimated work (GFLOP)", round(cost.gflop, 2), "max_gflop", hint)
    add(field, "estimated memory (MiB)", round(cost.memory_mib, 1), "max_memory_mib", hint)
    if limits.max_seconds > 0 and not errors:
        seconds = predict_time(spec, 1, limits.auto_exact_gflop).seconds * limits.cost_scale
        hint = '; shrink recurrent.steps, hidden or batch_size, or POST /v1/jobs {"analysis": spec}'
        add("recurrent", "predicted time (s)", round(seconds, 2), "max_seconds", hint)
    return errors
