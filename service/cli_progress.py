"""Progress by stage on stderr for `python -m service analyze`, when stderr is a terminal.

Why from outside the engine: the engine's spine (service/engine/analysis.py) takes no callback, and a
progress hook is the command line's concern. While an analysis runs, the stage functions the spine (or the
recurrent spine, service/engine/recurrent_analysis.py) looks up in its module (the pass, the float64 reference,
the Jacobian products, the diagnosis, whose recommendation reruns call the pass again) are wrapped to announce
themselves; the numbers are untouched, and a stage whose function is renamed is simply not announced. The
training probe's steps come through service.engine.progress.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console

# (module attribute in service.engine.analysis, what a person reads)
STAGES = (
    ("run_pass", "forward and backward pass in the spec's dtype"),
    ("run_reference", "float64 reference pass"),
    ("exact_chain", "Jacobian products (exact)"),
    ("estimate_chain", "Jacobian products (estimate)"),
    # residual/normalised networks
    ("run_block_pass", "forward and backward pass in the spec's dtype"),
    ("run_block_reference", "float64 reference pass"),
    ("block_chain", "Jacobian products through the blocks"),
    # the spec's training probe (its step count through service.engine.progress)
    ("run_probe", "training probe"),
)
# (module attribute in service.engine.recurrent_analysis, what a person reads): a recurrent spec's stages
RECURRENT_STAGES = (
    ("run_recurrent_pass", "forward and backward pass through time in the spec's dtype"),
    ("run_recurrent_reference", "float64 reference pass through time"),
    ("time_products", "Jacobian products along time"),
    ("depth_products", "Jacobian products along the stacked layers"),
    ("run_probe", "training probe"),
)
PASSES = ("run_pass", "run_block_pass", "run_recurrent_pass")  # called again by each recommendation's rerun


class _Announcer:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.perf_counter()
        self.stage_started = self.started
        self.current: str | None = None
        self.diagnosis_depth = 0  # the reruns run whole analyses, their own diagnosis included
        self.reruns = 0
        self.status: Any = None

    def begin(self, text: str) -> None:
        self.end()
        self.current, self.stage_started = text, time.perf_counter()
        self.status.update(f"{text} …")

    def end(self) -> None:
        if self.current is not None:
            took = time.perf_counter() - self.stage_started
            self.console.print(f"[green]✓[/] {self.current} [dim]({took:.1f} s)[/]", highlight=False)
            self.current = None

    def wrap(self, name: str, text: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def announced(*args: Any, **kwargs: Any) -> Any:
            if self.diagnosis_depth:
                if name in PASSES:
                    self.reruns += 1
                    self.status.update(f"diagnosis: verifying recommended fixes, rerun {self.reruns} …")
            else:
                self.begin(text)
            return fn(*args, **kwargs)

        return announced

    def wrap_diagnosis(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def announced(*args: Any, **kwargs: Any) -> Any:
            if not self.diagnosis_depth:
                self.begin("diagnosis and verified fixes")
            self.diagnosis_depth += 1
            try:
                return fn(*args, **kwargs)
            finally:
                self.diagnosis_depth -= 1
                if not self.diagnosis_depth and self.reruns:
                    plural = "s" if self.reruns != 1 else ""
                    self.current = f"diagnosis and verified fixes ({self.reruns} rerun{plural})"

        return announced


@contextlib.contextmanager
def stage_progress(console: Console) -> Iterator[None]:
    """Announce the analysis's stages on `console` (a spinner, then one line per stage done with its time)."""
    from service.engine import analysis, recurrent_analysis

    announcer = _Announcer(console)
    saved: list[tuple[Any, str, Any]] = []
    for module, stages in ((analysis, STAGES), (recurrent_analysis, RECURRENT_STAGES)):
        for name, text in stages:
            if hasattr(module, name):
                saved.append((module, name, getattr(module, name)))
                setattr(module, name, announcer.wrap(name, text, getattr(module, name)))
    diagnosis = getattr(analysis, "diagnosis_mod", None)
    if diagnosis is not None and hasattr(diagnosis, "diagnose"):
        saved.append((diagnosis, "diagnose", diagnosis.diagnose))
        diagnosis.diagnose = announcer.wrap_diagnosis(diagnosis.diagnose)
    if hasattr(recurrent_analysis, "diagnose_recurrent"):
        saved.append((recurrent_analysis, "diagnose_recurrent", recurrent_analysis.diagnose_recurrent))
        recurrent_analysis.diagnose_recurrent = announcer.wrap_diagnosis(recurrent_analysis.diagnose_recurrent)
    from service.engine.progress import training_steps

    def step(done: int, total: int) -> None:
        announcer.status.update(f"training probe: step {done}/{total} …")

    token = training_steps.set(step)
    try:
        with console.status("building the network …") as status:
            announcer.status = status
            yield
            announcer.end()
        console.print(f"[dim]analysis done in {time.perf_counter() - announcer.started:.1f} s[/]", highlight=False)
    finally:
        training_steps.reset(token)
        for owner, name, original in saved:
            setattr(owner, name, original)
