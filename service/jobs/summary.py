"""One point of a sweep, from its full report: what a phase diagram needs, and nothing torch."""

from __future__ import annotations

from typing import Any

from service.grading.pointer import PointerError, resolve

from .stable_lr import training_point


def _event(event: dict[str, Any]) -> dict[str, Any]:
    return {"occurred": event["occurred"], "first_layer": event["first_layer"], "quantity": event["quantity"]}


def point_summary(report: dict[str, Any], params: dict[str, Any], pointers: list[str]) -> dict[str, Any]:
    """The measured verdict and growth beside the theory's χ (χ = 1 is the edge of chaos)."""
    diagnosis, theory = report["diagnosis"], report["theory"]
    out: dict[str, Any] = {
        "params": params,
        "verdict": diagnosis["verdict"],
        "log10_total_growth": diagnosis["log10_total_growth"],
        "growth_per_layer": diagnosis["growth_per_layer"],
        "onset_layer": diagnosis["onset_layer"],
        "overflow": _event(diagnosis["overflow"]),
        "underflow": _event(diagnosis["underflow"]),
        "theory": {
            "chi": theory["chi_mean"],
            "predicted_log10_total_growth": theory["predicted_log10_total_growth"],
            "predicted_growth_per_layer": theory["predicted_growth_per_layer"],
            "critical_weight_scale": theory["critical_weight_scale"],
        },
        "summary": diagnosis["summary"],
        "report_id": report["id"],
        "elapsed_ms": report["runtime"]["elapsed_ms"],
    }
    if report.get("training") is not None:  # the training probe's outcome (a learning-rate sweep reads it)
        out["training"] = training_point(report["training"])
    pointers = [p for p in pointers if p.startswith("/") or p == ""]  # named summary kinds are not pointers
    if pointers:
        kept: dict[str, Any] = {}
        for pointer in pointers:
            try:
                kept[pointer] = resolve(report, pointer)
            except PointerError:
                kept[pointer] = None
        out["extra"] = kept
    return out
