"""`analyze --format text`: the report as a person reads it (rich), from the report's wire dict only.

Verdict and summary, the numbers that decide it (total growth, per layer, onset, overflow and
underflow in the dtype), the causes, the verified fixes, and a per-layer table of at most
TABLE_ROWS rows (the top, the bottom, evenly spaced layers between, and every layer an event
names). JSON stays the default output: it is what scripts and autograders parse.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from service.engine.narrative import value_words

TABLE_ROWS = 16
VERDICT_STYLE = {"exploding": "bold red", "vanishing": "bold blue", "stable": "bold green"}


def _num(value: Any, fmt: str = ".3g") -> str:
    return "—" if value is None else format(value, fmt)


def _power(log10: float | None) -> str:
    """10^x as a person reads it: 2.5e-31, or 10^-400 where a float would not hold it."""
    if log10 is None:
        return "—"
    if abs(log10) < 300:
        return f"{10.0**log10:.2g}"
    return f"10^{log10:.1f}"


def _event(name: str, event: dict[str, Any]) -> str:
    if not event.get("occurred"):
        return f"{name}: none"
    where = f"from layer {event['first_layer']}" if event.get("first_layer") is not None else ""
    what = f" ({event['quantity']})" if event.get("quantity") else ""
    return f"{name}: yes {where}{what}".rstrip()


def rows_to_show(report: dict[str, Any], limit: int = TABLE_ROWS) -> list[int]:
    """Layer indices (1-based) for the compact table: all of a shallow net; else the ends, the layers the
    diagnosis names, and evenly spaced ones between, ascending, at most `limit`."""
    depth = len(report["layers"])
    if depth <= limit:
        return list(range(1, depth + 1))
    d = report["diagnosis"]
    named = {1, depth, d.get("onset_layer")} | {(d.get(k) or {}).get("first_layer") for k in ("overflow", "underflow")}
    keep = {i for i in named if isinstance(i, int) and 1 <= i <= depth}
    spaced = [1 + round(k * (depth - 1) / (limit - 1)) for k in range(limit)]
    for t in spaced:
        if len(keep) >= limit:
            break
        keep.add(t)
    return sorted(keep)


def layer_table(report: dict[str, Any]) -> Table:
    d = report["diagnosis"]
    marks = {d.get("onset_layer"): "onset"}
    for name in ("overflow", "underflow"):
        first = (d.get(name) or {}).get("first_layer")
        if first is not None:
            marks[first] = f"{marks[first]}, {name}" if first in marks else name
    time = report.get("axis") == "time"  # a recurrent spec: the list runs over steps
    table = Table(
        title="Per step (t = 1 is the first)" if time else "Per layer (t = 1 is the bottom)",
        caption=(
            "P_t = ∂h_T/∂S_t (Frobenius norm, exact arithmetic); dW = step t's share of ∂ℓ/∂W_hh in the dtype"
            if time
            else "P_t = ∂hᵈ/∂hᵗ (Frobenius norm, exact arithmetic); dW = ∂ℓ/∂Wᵗ in the dtype"
        )
        + "; idle: dead or saturated units; non-finite: of dW",
        title_justify="left",
        caption_justify="left",
        box=None,
        pad_edge=False,
    )
    for header in ("t", "shape", "log10 P_t", "log10 dW", "mean σ'", "idle", "non-finite", ""):
        table.add_column(header, justify="left" if header in ("shape", "") else "right", no_wrap=True)
    by_index = {layer["index"]: layer for layer in report["layers"]}
    for t in rows_to_show(report):
        layer = by_index[t]
        act, jp, wg = layer.get("activation") or {}, layer.get("jacobian_product") or {}, layer.get("weight_grad") or {}
        idle = max(act.get("dead_fraction") or 0.0, act.get("saturated_fraction") or 0.0)
        table.add_row(
            str(t),
            f"{layer['in_features']}→{layer['out_features']}",
            _num(jp.get("log10_frobenius_norm"), ".2f"),
            "inf"
            if wg.get("log10_norm") is None and (wg.get("nonfinite_fraction") or 0) > 0
            else _num(wg.get("log10_norm"), ".2f"),
            _num(act.get("sigma_prime_mean"), ".3f"),
            f"{idle:.0%}",
            f"{wg.get('nonfinite_fraction') or 0.0:.0%}",
            marks.get(t, ""),
        )
    return table


def change_text(change: dict[str, Any]) -> str:
    """A recommended change on one line: `weight_scale=0.5, init=kaiming_normal`; an architecture as
    `architecture=residual(every 2, branch_scale 0.1414)+layernorm(pre)`."""
    parts = []
    for key, value in change.items():
        if key == "architecture" and isinstance(value, dict):
            res, norm = value.get("residual"), value.get("normalization") or {}
            pieces = [f"residual(every {res['every']}, branch_scale {res['branch_scale']:g})"] if res else []
            if norm.get("kind", "none") != "none":
                pieces.append(f"{norm['kind']}({norm.get('position')})")
            value = "+".join(pieces) or "plain"
        parts.append(f"{key}={value_words(value)}")  # a nested member: recurrent=(cell lstm, forget_bias 1.0)
    return ", ".join(parts)


def _architecture(report: dict[str, Any]) -> str:
    """Residual blocks and normalisation in one line, with the growth's reference layer and the theory's error."""
    a = report["architecture"]
    parts = []
    if a.get("residual_every"):
        skips = sum(1 for b in a.get("blocks", []) if b.get("skip"))
        parts.append(
            f"residual every {a['residual_every']} ({skips} skips, branch_scale {_num(a.get('branch_scale'))})"
        )
    if a.get("normalization") not in (None, "none"):
        parts.append(f"{a['normalization']} {a.get('position')}")
    parts.append(f"growth from layer {a.get('growth_from_layer')}, products {a.get('products', '').replace('_', ' ')}")
    th = (report.get("theory") or {}).get("architecture") or {}
    if th.get("log10_error") is not None:
        parts.append(f"theory off by {_num(th['log10_error'])} in log10")
    return "; ".join(parts)


def summary(report: dict[str, Any]) -> Group:
    d, runtime = report["diagnosis"], report["runtime"]
    verdict = d["verdict"]
    head = Text.assemble(
        (verdict.upper(), VERDICT_STYLE.get(verdict, "bold")),
        f"   {'steps' if report.get('axis') == 'time' else 'depth'} {report['depth']}, {runtime['dtype']}, "
        f"{runtime['jacobian_method']} Jacobian products, "
        f"{runtime['elapsed_ms'] / 1000:.1f} s",
    )
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column()
    facts.add_row("total growth", f"{_power(d['log10_total_growth'])} (log10 {_num(d['log10_total_growth'], '.2f')})")
    unit = "step" if report.get("axis") == "time" else "layer"
    facts.add_row(f"per {unit}", _num(d.get("growth_per_layer"), ".3f"))
    facts.add_row("onset", "—" if d.get("onset_layer") is None else f"{unit} {d['onset_layer']}")
    facts.add_row("range", f"{_event('overflow', d['overflow'])}; {_event('underflow', d['underflow'])}")
    if report.get("architecture"):
        facts.add_row("architecture", _architecture(report))
    if report.get("training"):  # the training probe's own sentence; the verdict above stays the init's
        facts.add_row("training", report["training"]["summary"]["sentence"])
    parts: list[Any] = [head, Text(d["summary"]), facts]
    if d.get("causes"):
        parts.append(Text("Causes", style="bold"))
        parts += [Text(f"• {c['message']}") for c in d["causes"]]
    unit = "step" if report.get("axis") == "time" else "layer"
    fixes = [r for r in d.get("recommendations") or [] if r.get("fixes")]
    if fixes:
        parts.append(Text("Verified fixes (rerun with the change)", style="bold"))
        for r in fixes:
            change = change_text(r["change"])
            v = r.get("verified") or {}
            trained = v.get("training") or {}
            learns = {True: "; every layer learns", False: "; not every layer learns"}.get(trained.get("all_learn"), "")
            growth = _num(v.get("growth_per_layer"), ".3f")
            parts.append(Text(f"• {change}: {v.get('verdict', '?')}, {growth} per {unit}{learns}"))
    elif d.get("recommendations"):
        parts.append(Text("No recommended change was verified to fix it.", style="bold"))
    parts.append(layer_table(report))
    return Group(*parts)


WIDTH = 100  # where stdout is not a terminal (a file, a pipe): rich would assume 80 columns


def print_summary(report: dict[str, Any], console: Console | None = None) -> None:
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=WIDTH)
    console.print(Panel(summary(report), title=f"report {report['id'][:12]}", title_align="left", expand=False))
