"""A training step written by hand in plain PyTorch: the baseline the Runner is measured against."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class HandLoop:
    """What mmengine's ``train_step`` does, without the Runner, hooks or wrappers.

    Each call: data preprocessor, forward in ``mode='loss'`` (under autocast when ``amp_dtype``),
    sum of the terms whose key contains ``loss``, backward, gradient-norm clipping (before the
    step), optimiser step, gradients set to None. Returns the loss tensor without reading it
    (no device sync).

    Args:
        model: a promptsg ``BaseModel`` in train mode.
        optimizer: the optimiser of ``model``'s trainable parameters.
        batch: a collated batch, ``{'inputs': (B, 3, H, W) uint8, 'data_samples': {...}}``.
        max_norm: gradient-norm clip (None or 0: no clipping).
        amp_dtype: autocast dtype (e.g. ``torch.bfloat16``) or None for full precision.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        batch: dict,
        max_norm: float | None = 5.0,
        amp_dtype: torch.dtype | None = None,
    ) -> None:
        self.model, self.optimizer, self.batch = model, optimizer, batch
        self.max_norm, self.amp_dtype = max_norm, amp_dtype
        self.params = [p for group in optimizer.param_groups for p in group['params']]
        self.device_type = next(model.parameters()).device.type

    def __call__(self) -> Tensor:
        with torch.autocast(
            self.device_type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None
        ):
            data = self.model.data_preprocessor(self.batch, True)
            losses = self.model(**data, mode='loss')
        loss = sum(value for key, value in losses.items() if 'loss' in key)
        loss.backward()
        if self.max_norm:
            grads = [p for p in self.params if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(grads, self.max_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()


def adamw(model: nn.Module, lr: float = 1e-3, weight_decay: float = 1e-4) -> torch.optim.AdamW:
    """AdamW over the trainable parameters (the quick-start optimiser)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
