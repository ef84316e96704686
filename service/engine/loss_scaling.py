"""Loss scaling for the training probe: none, static (a fixed S) or dynamic (torch.amp.GradScaler itself).

The backward runs on S·ℓ in the pass dtype, so small gradients stay above the dtype's smallest normal; the
optimizer's (float32) gradients are then divided by S. dynamic is torch.amp.GradScaler with its defaults (start at
2^16; a step whose unscaled gradients hold inf/NaN is skipped and halves S; 2000 finite steps in a row double it):
the probe calls GradScaler's own scale/unscale_/step/update, so its rule is torch's, on the CPU and on CUDA.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


class LossScaling:
    def __init__(self, mode: str, static_scale: float, device: torch.device) -> None:
        self.mode = mode
        self._static = static_scale if mode == "static" else 1.0
        self._scaler = torch.amp.GradScaler(device.type) if mode == "dynamic" else None

    @property
    def scale(self) -> float:
        return self._scaler.get_scale() if self._scaler is not None else self._static

    def scaled(self, loss: Tensor) -> Tensor:
        """S·ℓ (GradScaler.scale for dynamic, which also starts its state)."""
        if self._scaler is not None:
            return self._scaler.scale(loss)
        return loss * self._static if self._static != 1.0 else loss

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        """Unscale the gradients, step (or skip), update S; True where the step was skipped.

        dynamic: skipped exactly where GradScaler backs off (its scale falls only on a step it skipped); static and
        none always step, non-finite gradients and all, as a loop without GradScaler would."""
        if self._scaler is None:
            if self._static != 1.0:
                inv = 1.0 / self._static
                for group in optimizer.param_groups:
                    for p in group["params"]:
                        if p.grad is not None:
                            p.grad.mul_(inv)
            optimizer.step()
            return False
        before = self._scaler.get_scale()
        self._scaler.unscale_(optimizer)
        self._scaler.step(optimizer)
        self._scaler.update()
        return self._scaler.get_scale() < before
