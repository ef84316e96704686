"""Seeded weight draws, with the unit draws of recent networks kept for the next analysis that needs them.

Drawing is the one part of an analysis that does not get faster with the hardware: torch's float64
normal_ is scalar Box-Muller (about 20 ns a weight, a fifth of a d=100, n=256 analysis on one core).
An analysis's recommendation reruns, a sweep's points and a class submitting variations of one
network draw the same layers again with another scale, init of the same family, activation or dtype.
So the draw N(0, 1) or U(0, 1) of each layer is kept by (layer seed, shape, family), at most
`limit` bytes, least recently used out first, and scaled as the init would have: bit for bit the
numbers torch's init functions give (tests/engine/test_draws.py), since normal_(0, std) computes
z·std and the uniform inits are exact maps of U(0, 1).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

import torch

Tensor = torch.Tensor
DEFAULT_CACHE_MIB = 128
_NORMAL = ("normal", "xavier_normal", "kaiming_normal")
_UNIFORM = ("uniform", "xavier_uniform", "kaiming_uniform")
INITS = (*_NORMAL, *_UNIFORM, "orthogonal")


class DrawCache:
    """Unit draws by (layer seed, shape, family); safe for the parallel per-layer draws (one lock)."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self._items: OrderedDict[tuple[int, tuple[int, ...], str], Tensor] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[int, tuple[int, ...], str]) -> Tensor | None:
        with self._lock:
            unit = self._items.get(key)
            if unit is not None:
                self._items.move_to_end(key)
            return unit

    def put(self, key: tuple[int, tuple[int, ...], str], unit: Tensor) -> None:
        size = unit.numel() * unit.element_size()
        with self._lock:
            if size > self.limit or key in self._items:
                return
            self._items[key] = unit
            self._bytes += size
            self._evict()

    def resize(self, limit_bytes: int) -> None:
        with self._lock:
            self.limit = limit_bytes
            self._evict()

    def _evict(self) -> None:
        """Least recently used out until the cache fits its limit (the caller holds the lock)."""
        while self._bytes > self.limit:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.numel() * old.element_size()

    @property
    def bytes(self) -> int:
        return self._bytes


CACHE = DrawCache(DEFAULT_CACHE_MIB * 2**20)


def set_cache_mib(mib: int) -> None:
    """The cache's size per process (GRADSTAB_DRAW_CACHE_MIB); 0 turns it off."""
    CACHE.resize(mib * 2**20)


def draw_weight(shape: tuple[int, int], init: str, scale: float, seed: int) -> Tensor:
    """W (n_out, n_in) in float64 from the generator seeded with `seed`, as torch.nn.init would draw it."""
    family = "normal" if init in _NORMAL else "uniform" if init in _UNIFORM else None
    if family is None:  # orthogonal: a QR of the draw, nothing to share
        w = torch.empty(*shape, dtype=torch.float64)
        torch.nn.init.orthogonal_(w, gain=scale, generator=torch.Generator(device="cpu").manual_seed(seed))
        return w
    key = (seed, tuple(shape), family)
    unit = CACHE.get(key)
    if unit is None:
        unit = torch.empty(*shape, dtype=torch.float64)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        # float64 draws: torch's float32 normal_ and uniform_ (and float64 uniform_(a, b)) take vectorised
        # kernels on AVX2 CPUs and scalar ones elsewhere that round differently, so the same seed gave
        # different weights on different machines (ATEN_CPU_CAPABILITY).
        unit.normal_(0.0, 1.0, generator=gen) if family == "normal" else unit.uniform_(0.0, 1.0, generator=gen)
        CACHE.put(key, unit)
    n_out, n_in = shape
    if family == "uniform":  # U(-b, b) as 2u - 1 times b: exact elementwise maps, the same on every kernel
        bounds = {
            "uniform": scale,
            "xavier_uniform": scale * math.sqrt(6.0 / (n_in + n_out)),
            "kaiming_uniform": scale * math.sqrt(2.0) * math.sqrt(3.0 / n_in),
        }
        return (unit * 2.0).sub_(1.0).mul_(bounds[init])
    if init == "normal":
        return unit * scale
    if init == "xavier_normal":  # torch.nn.init.xavier_normal_'s std, computed as it computes it
        return unit * (scale * math.sqrt(2.0 / float(n_in + n_out)))
    return (unit * (math.sqrt(2.0) / math.sqrt(n_in))).mul_(scale)  # kaiming_normal_ (relu, fan_in), then scale
