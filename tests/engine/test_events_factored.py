"""The range events read the exact weight gradient only where the pass holds a zero: the factored form
gives the same logs as the formed product, on a few entries and on most of a layer."""

from __future__ import annotations

import torch

from service.engine.events import WeightGradLog


def test_values_at_a_mask_equal_the_formed_product() -> None:
    gen = torch.Generator().manual_seed(0)
    b, n_t, n_prev = 5, 7, 6
    w = WeightGradLog(
        weight=torch.rand(b, generator=gen, dtype=torch.float64),
        g_z=torch.randn(b, n_t, generator=gen, dtype=torch.float64),
        h_dir=torch.randn(b, n_prev, generator=gen, dtype=torch.float64),
        top=torch.tensor(-3.5, dtype=torch.float64),
    )
    dense = w.dense()
    for density in (0.1, 0.9):
        mask = torch.rand(n_t, n_prev, generator=gen) < density
        torch.testing.assert_close(w.at(mask), dense[mask], rtol=1e-12, atol=1e-12)
