"""Workers recycle staggered (issue 20 item 8): with gunicorn's own max_requests + jitter, workers that share the
load evenly reach their limits within the jitter of one another and recycle together. A simulation of the
arbiter: requests go round-robin to the live workers, a worker that reaches its limit is replaced by a fresh one
(the next age), and the requests served between two recycles are counted."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from service.config import staggered_max_requests


def _recycles(workers: int, max_requests: int, jitter: int, staggered: bool, total: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    ages = iter(range(1, 10_000))

    def fresh() -> list[int]:  # [requests served, limit]
        age = next(ages)
        base = staggered_max_requests(age, workers, max_requests, jitter) if staggered else max_requests
        return [0, base + rng.randint(0, jitter)]

    live = [fresh() for _ in range(workers)]
    at = []
    for n in range(total):
        w = live[n % workers]
        w[0] += 1
        if w[0] >= w[1]:
            at.append(n)
            live[n % workers] = fresh()
    return at


@pytest.mark.parametrize("workers", [2, 3, 4])
def test_no_two_workers_recycle_within_the_jitter(workers: int) -> None:
    max_requests, jitter = 1000, 100
    for seed in range(5):
        at = _recycles(workers, max_requests, jitter, staggered=True, total=20 * max_requests, seed=seed)
        gaps = [b - a for a, b in pairwise(at)]
        # requests of all workers between two recycles: far more than the jitter's spread of workers × jitter
        assert len(at) >= 10 and min(gaps) > workers * jitter, (workers, seed, gaps)


def test_unstaggered_workers_recycle_together() -> None:
    """The defect the stagger removes: gunicorn's jitter alone leaves recycles within workers × jitter."""
    at = _recycles(2, 1000, 100, staggered=False, total=20_000, seed=0)
    assert min(b - a for a, b in pairwise(at)) <= 2 * 100


def test_the_first_generation_is_spread_and_replacements_count_from_their_start() -> None:
    assert [staggered_max_requests(age, 4, 1000, 100) for age in range(1, 7)] == [1000, 1250, 1500, 1750, 1000, 1000]
    assert staggered_max_requests(1, 1, 1000, 100) == 1000 and staggered_max_requests(2, 2, 0, 0) == 0
