"""Counts, per stage of `analysis.analyze`, the reads of tensor values into Python and the tensors created on the
host, through a TorchFunctionMode: on the CPU with the GPU's rules forced (placement.RESIDENT_DEVICES), what would
be a device synchronisation or a host-side stage on a GPU."""

from __future__ import annotations

import weakref
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from service.engine import analysis
from service.engine.placement import STAGES

# Reads of a value into Python (a device-to-host copy that waits for the device's queue).
READS = frozenset({"__float__", "__int__", "__bool__", "__index__", "item", "tolist", "numpy", "cpu"})
# Factories that put a new tensor on the host unless given a device (seeded draws, with a generator, are the
# documented exception: drawn on the host so a seed gives the same numbers on every device).
FACTORIES = frozenset(
    {
        *("zeros", "ones", "full", "empty", "tensor", "as_tensor", "arange", "linspace", "logspace", "eye"),
        *("randn", "rand", "randint", "randperm"),
    }
)


class _Mode(TorchFunctionMode):
    """reads: per stage, reads of device values (a read of a tensor already copied to the host by .cpu(), or
    computed from such copies only, is free and not counted); host_created: factory calls without a device;
    devices: per stage, the device types of the tensors its operations returned."""

    def __init__(self) -> None:
        super().__init__()
        self.stage = "other"
        self.reads: Counter[str] = Counter()
        self.host_created: dict[str, list[str]] = defaultdict(list)
        self.devices: dict[str, Counter[str]] = defaultdict(Counter)
        self._host: set[int] = set()  # ids of tensors copied to the host, and of what is computed from them only

    def _mark_host(self, t: torch.Tensor) -> None:
        self._host.add(id(t))
        weakref.finalize(t, self._host.discard, id(t))

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        inputs = [a for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
        from_host = bool(inputs) and all(id(a) in self._host for a in inputs)
        if name in READS and not from_host:
            self.reads[self.stage] += 1
        elif name in FACTORIES and kwargs.get("device") is None and kwargs.get("generator") is None:
            self.host_created[self.stage].append(name)
        out = func(*args, **kwargs)
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.devices[self.stage][t.device.type] += 1
                if name == "cpu" or from_host:
                    self._mark_host(t)
        return out


@contextmanager
def host_traffic() -> Iterator[_Mode]:
    """Inside: every analysis's host reads per stage (mode.reads) and host-created tensors (mode.host_created);
    a stage's nested calls count to it."""
    mode = _Mode()

    def staged(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            outer = mode.stage
            if outer == "other":
                mode.stage = name
            try:
                return fn(*args, **kwargs)
            finally:
                mode.stage = outer

        return run

    saved = {name: getattr(analysis, name) for name in STAGES}
    for name, fn in saved.items():
        setattr(analysis, name, staged(name, fn))
    try:
        with mode:
            yield mode
    finally:
        for name, fn in saved.items():
            setattr(analysis, name, fn)
