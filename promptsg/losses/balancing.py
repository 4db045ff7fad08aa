"""Loss balancing: reweight a model's named loss terms (fixed, ramped or learned weights).

A balancer takes the model's loss dict and returns it with the chosen terms reweighted under
the same names, plus a detached ``weight_<term>`` figure per reweighted term (no 'loss' in the
name, so mmengine logs it without summing it). Keys without 'loss' pass through untouched.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

from promptsg.errors import ConfigError
from promptsg.losses.base import check_loss_name, check_weight, figure_name
from promptsg.registry import LOSSES


class LossBalancer(nn.Module, ABC):
    """Base: ``forward(losses: dict[str, Tensor]) -> dict[str, Tensor]``.

    ``set_epoch(epoch)`` (0-based, as ``runner.epoch``) is called by the training loop's hook
    before each epoch; balancers that do not depend on the epoch ignore it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Tell the balancer the current (0-based) training epoch."""
        self.epoch = int(epoch)

    @abstractmethod
    def term_weights(self, losses: dict[str, Tensor]) -> dict[str, Tensor | float]:
        """Weight of each term to reweight (names already checked against ``losses``)."""

    def check_terms(self, terms: list[str], losses: dict[str, Tensor]) -> None:
        """Every configured term must be one of the model's loss terms."""
        missing = [t for t in terms if t not in losses]
        if missing:
            known = sorted(k for k in losses if 'loss' in k)
            raise ConfigError(
                f'{type(self).__name__}: unknown loss term(s) {missing}; the model computes {known}'
            )

    def forward(self, losses: dict[str, Tensor]) -> dict[str, Tensor]:
        """Reweighted ``losses`` plus a detached ``weight_<term>`` figure per reweighted term."""
        out = dict(losses)
        figures = {}
        for term, weight in self.term_weights(losses).items():
            out[term] = losses[term] * weight
            ref = losses[term]
            figures[figure_name(term, prefix='weight_')] = torch.as_tensor(
                weight, dtype=ref.dtype, device=ref.device
            ).detach()
        out.update(figures)
        return out


@LOSSES.register_module()
class FixedWeights(LossBalancer):
    """Multiply the named terms by constants, e.g. ``weights=dict(loss_supcon=0.5)``."""

    def __init__(self, weights: dict[str, float]) -> None:
        super().__init__()
        if not isinstance(weights, dict) or not weights:
            raise ConfigError(
                f'FixedWeights: weights must be a non-empty dict term -> weight, got {weights!r}'
            )
        self.weights = {
            check_loss_name('FixedWeights', 'weights key', term): check_weight(
                'FixedWeights', f'weights[{term!r}]', w
            )
            for term, w in weights.items()
        }

    def term_weights(self, losses: dict[str, Tensor]) -> dict[str, float]:
        self.check_terms(list(self.weights), losses)
        return dict(self.weights)

    def extra_repr(self) -> str:
        return f'weights={self.weights}'


@LOSSES.register_module()
class LinearRampWeight(LossBalancer):
    """Ramp one term's weight linearly from ``start_weight`` to ``end_weight`` over epochs.

    ``w(e) = start_weight`` for ``e <= begin``, ``end_weight`` for ``e >= end``, and
    ``start_weight + (end_weight − start_weight)·(e − begin)/(end − begin)`` in between
    (epochs 0-based; the ramp spans epochs ``[begin, end)``). Other terms pass through.
    """

    def __init__(
        self, term: str, start_weight: float, end_weight: float, begin: int, end: int
    ) -> None:
        super().__init__()
        self.term = check_loss_name('LinearRampWeight', 'term', term)
        self.start_weight = check_weight('LinearRampWeight', 'start_weight', start_weight)
        self.end_weight = check_weight('LinearRampWeight', 'end_weight', end_weight)
        if not isinstance(begin, int) or not isinstance(end, int) or not 0 <= begin < end:
            raise ConfigError(
                f'LinearRampWeight: need integer epochs 0 <= begin < end, got begin={begin!r}, '
                f'end={end!r}'
            )
        self.begin, self.end = begin, end

    def weight_at(self, epoch: int) -> float:
        """The ramped weight at a (0-based) epoch."""
        progress = min(max(epoch - self.begin, 0) / (self.end - self.begin), 1.0)
        return self.start_weight + (self.end_weight - self.start_weight) * progress

    def term_weights(self, losses: dict[str, Tensor]) -> dict[str, float]:
        self.check_terms([self.term], losses)
        return {self.term: self.weight_at(self.epoch)}

    def extra_repr(self) -> str:
        return (
            f'term={self.term!r}, start_weight={self.start_weight}, '
            f'end_weight={self.end_weight}, begin={self.begin}, end={self.end}'
        )


@LOSSES.register_module()
class UncertaintyWeighting(LossBalancer):
    """Learned weights by homoscedastic uncertainty (Kendall, Gal & Cipolla, CVPR 2018).

    With learnable log-variances ``s_i = log σ_i²`` (``log_vars``, init 0), the total is
    ``Σ_i exp(−s_i)·L_i + s_i`` — the plain form that drops the paper's 1/2 factors (those
    differ between regression and classification terms); for a fixed L_i its minimum is at
    ``s_i = log L_i``. Each ``exp(−s_i)·L_i`` keeps its term's name; ``Σ_i s_i`` is returned
    as ``loss_uncertainty_reg`` so that mmengine sums it too. Train ``log_vars`` without
    weight decay (decay would pull every weight towards 1).
    """

    reg_name = 'loss_uncertainty_reg'

    def __init__(self, terms: list[str]) -> None:
        super().__init__()
        if not isinstance(terms, list | tuple) or not terms:
            raise ConfigError(
                f'UncertaintyWeighting: terms must be a non-empty list of loss names, got {terms!r}'
            )
        for term in terms:
            check_loss_name('UncertaintyWeighting', 'terms item', term)
        if len(set(terms)) != len(terms) or self.reg_name in terms:
            raise ConfigError(
                f'UncertaintyWeighting: terms must be distinct and exclude {self.reg_name!r}, '
                f'got {list(terms)}'
            )
        self.terms = list(terms)
        self.log_vars = nn.Parameter(torch.zeros(len(terms)))

    def term_weights(self, losses: dict[str, Tensor]) -> dict[str, Tensor]:
        self.check_terms(self.terms, losses)
        return {t: torch.exp(-self.log_vars[i]) for i, t in enumerate(self.terms)}

    def forward(self, losses: dict[str, Tensor]) -> dict[str, Tensor]:
        out = super().forward(losses)
        out[self.reg_name] = self.log_vars.sum()
        return out

    def extra_repr(self) -> str:
        return f'terms={self.terms}'
