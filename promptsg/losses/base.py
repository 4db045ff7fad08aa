"""What every loss shares: a configurable term name and weight, checked up front, and float32."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from promptsg.errors import ConfigError


def check_loss_name(owner: str, key: str, name: object) -> str:
    """A loss term's name must contain 'loss': mmengine sums exactly those keys."""
    if not isinstance(name, str) or 'loss' not in name:
        raise ConfigError(
            f"{owner}: {key} must be a string containing 'loss' (mmengine sums only those "
            f'keys), got {name!r}'
        )
    return name


def check_weight(owner: str, key: str, value: object) -> float:
    """A loss weight is a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f'{owner}: {key} must be a finite number >= 0, got {value!r}')
    if value < 0:
        raise ConfigError(f'{owner}: {key} must be >= 0, got {value}')
    return float(value)


def figure_name(loss_name: str, prefix: str = '', suffix: str = '') -> str:
    """Name of a logged, non-summed figure about a term: 'loss' removed from the term name.

    ``figure_name('loss_triplet', prefix='weight_') == 'weight_triplet'``.
    """
    stem = loss_name.replace('loss_', '').replace('_loss', '').replace('loss', '') or 'total'
    return f'{prefix}{stem}{suffix}'


def _float32(value):
    if isinstance(value, Tensor) and value.is_floating_point():
        return value.float()
    return value


def full_precision(fn: Callable) -> Callable:
    """Run ``fn`` (a loss or margin ``forward``) in float32 with autocast off.

    Floating tensor arguments are cast to float32 and autocast is disabled on their device, so
    matmuls inside (``F.linear``, ``@``), which autocast would otherwise run in bf16/fp16 even
    after a ``.float()``, compute in float32: a triplet distance near 9 is off by about 0.1 in
    bf16, against a margin of 0.3.
    """

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]
        device_type = tensors[0].device.type if tensors else 'cpu'
        args = tuple(_float32(a) for a in args)
        kwargs = {k: _float32(v) for k, v in kwargs.items()}
        with torch.autocast(device_type, enabled=False):
            return fn(self, *args, **kwargs)

    wrapper._full_precision = True
    return wrapper


class WeightedLoss(nn.Module):
    """Base of the losses: returns ``{loss_name: loss_weight * value}``.

    Every subclass's ``forward`` runs in float32 with autocast off (:func:`full_precision`),
    plugins' losses included: a subclass cannot forget it.
    """

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        forward = cls.__dict__.get('forward')
        if forward is not None and not getattr(forward, '_full_precision', False):
            cls.forward = full_precision(forward)

    def __init__(self, loss_weight: float, loss_name: str) -> None:
        super().__init__()
        owner = type(self).__name__
        self.loss_weight = check_weight(owner, 'loss_weight', loss_weight)
        self.loss_name = check_loss_name(owner, 'loss_name', loss_name)

    def named(self, value: Tensor) -> dict[str, Tensor]:
        """The weighted term under its configured name."""
        return {self.loss_name: value * self.loss_weight}

    def extra_repr(self) -> str:
        return f'loss_name={self.loss_name!r}, loss_weight={self.loss_weight}'
