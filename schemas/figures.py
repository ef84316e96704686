"""Which picture an image answer draws (`?figure=` on POST /v1/analyses and GET /v1/jobs/{id}, `--figure` of the CLI):
the main plot of gradient norms per layer by default, or one of the training probe's pictures."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from service.engine.spec import ModelSpec

# name → what it draws (service/plots/files.py draws them)
FIGURES: dict[str, str] = {
    "gradients": "gradient norms per layer (the default)",
    "training_gradients": "the training probe's log10‖∂ℓ/∂W‖ per layer × step (a heat map)",
    "training_loss": "the training probe's loss per step, skipped steps and divergence marked",
    "training_updates": "the training probe's update ratio ‖ΔW‖/‖W‖ per step, for layers spread over the depth",
}
TRAINING_FIGURES = tuple(name for name in FIGURES if name.startswith("training_"))


def unavailable(figure: str, spec: ModelSpec) -> str | None:
    """Why `figure` cannot be drawn for `spec`, known before any work (the API's 422 and the CLI's refusal), or None."""
    if figure in TRAINING_FIGURES and spec.training is None:
        return f"figure {figure} draws the training probe: the spec has no training"
    return None


class FigureArgsSchema(Schema):
    """Query arguments of an answer that may be a picture; other query arguments are ignored, as before."""

    class Meta:
        unknown = EXCLUDE

    figure = fields.String(
        load_default="gradients",
        validate=validate.OneOf(tuple(FIGURES)),
        metadata={
            "description": "With Accept image/svg+xml or image/png: which picture. "
            + "; ".join(f"`{k}`: {v}" for k, v in FIGURES.items())
            + ". The training pictures need a spec with `training` (else 422 naming figure). Ignored by JSON and "
            "HTML answers (the HTML page holds every picture)."
        },
    )
