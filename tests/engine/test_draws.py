"""Weight draws from the unit-draw cache are bit for bit what torch.nn.init draws from the same generator,
fresh or cached, and the cache keeps to its size."""

from __future__ import annotations

import math

import pytest
import torch

from service.engine import draws
from service.engine.draws import INITS, DrawCache, draw_weight


def _torch_init(shape: tuple[int, int], init: str, scale: float, seed: int) -> torch.Tensor:
    """The weights as torch.nn.init draws them in float64 from a generator seeded with `seed`."""
    w = torch.empty(*shape, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    n_out, n_in = shape
    nn_init = torch.nn.init
    if init == "normal":
        nn_init.normal_(w, 0.0, scale, generator=gen)
    elif init == "xavier_normal":
        nn_init.xavier_normal_(w, gain=scale, generator=gen)
    elif init == "kaiming_normal":
        nn_init.kaiming_normal_(w, nonlinearity="relu", generator=gen)
        w.mul_(scale)
    elif init == "orthogonal":
        nn_init.orthogonal_(w, gain=scale, generator=gen)
    else:  # U(-b, b) by the exact map 2u - 1 of U(0, 1) (torch's uniform_(a, b) rounds per instruction set)
        bound = {
            "uniform": scale,
            "xavier_uniform": scale * math.sqrt(6.0 / (n_in + n_out)),
            "kaiming_uniform": scale * math.sqrt(2.0) * math.sqrt(3.0 / n_in),
        }[init]
        w.uniform_(0.0, 1.0, generator=gen).mul_(2.0).sub_(1.0).mul_(bound)
    return w


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("shape", [(3, 5), (16, 16), (37, 20)])  # below, at and off normal_'s 16-wide blocks
def test_draws_equal_torch_init_fresh_and_cached(init: str, shape: tuple[int, int]) -> None:
    seed = 1234 + shape[0]
    for scale in (0.5, 1.0, 2.7):  # the first scale draws, the others reuse the cached unit draw
        expected = _torch_init(shape, init, scale, seed)
        assert torch.equal(draw_weight(shape, init, scale, seed), expected), (init, shape, scale)
        assert torch.equal(draw_weight(shape, init, scale, seed), expected)  # and again, from the cache


def test_cached_draws_are_not_changed_by_their_users() -> None:
    w = draw_weight((8, 8), "normal", 1.0, 99)
    w.mul_(0.0)
    assert torch.equal(draw_weight((8, 8), "normal", 1.0, 99), _torch_init((8, 8), "normal", 1.0, 99))


def test_the_cache_keeps_to_its_size_least_recent_out_first() -> None:
    cache = DrawCache(limit_bytes=3 * 8 * 8 * 8)  # three 8×8 float64 draws
    for seed in range(4):
        cache.put((seed, (8, 8), "normal"), torch.zeros(8, 8, dtype=torch.float64))
    assert cache.bytes == 3 * 8 * 8 * 8
    assert cache.get((0, (8, 8), "normal")) is None  # the oldest went
    assert cache.get((1, (8, 8), "normal")) is not None  # now the most recent
    cache.put((4, (8, 8), "normal"), torch.zeros(8, 8, dtype=torch.float64))
    assert cache.get((2, (8, 8), "normal")) is None
    assert cache.get((1, (8, 8), "normal")) is not None
    cache.resize(0)
    assert cache.bytes == 0 and cache.get((1, (8, 8), "normal")) is None


def test_a_zero_size_cache_still_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(draws, "CACHE", DrawCache(0))
    assert torch.equal(draw_weight((5, 4), "xavier_uniform", 1.3, 7), _torch_init((5, 4), "xavier_uniform", 1.3, 7))
    assert draws.CACHE.bytes == 0
