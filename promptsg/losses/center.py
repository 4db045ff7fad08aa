"""Center loss (Wen et al., ECCV 2016) with centres trained by the optimiser."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from promptsg.errors import ConfigError
from promptsg.losses.base import WeightedLoss
from promptsg.registry import LOSSES


@LOSSES.register_module()
class CenterLoss(WeightedLoss):
    """``mean_b ||f_b − c_{y_b}||² / 2`` with learnable centres ``(num_classes, feat_dim)``.

    The centres are an ``nn.Parameter`` updated by the model's optimiser together with the
    network (as in the ReID strong baseline), not by Wen et al.'s separate α-rule. Default
    ``loss_weight`` 5e-4 is the strong baseline's (Luo et al., 2019).
    """

    def __init__(
        self,
        num_classes: int,
        feat_dim: int,
        loss_weight: float = 5e-4,
        loss_name: str = 'loss_center',
    ) -> None:
        super().__init__(loss_weight, loss_name)
        if num_classes < 1:
            raise ConfigError(f'CenterLoss: num_classes must be >= 1, got {num_classes}')
        if feat_dim < 1:
            raise ConfigError(f'CenterLoss: feat_dim must be >= 1, got {feat_dim}')
        self.num_classes = num_classes
        self.feat_dim = feat_dim
        self.centers = nn.Parameter(torch.randn(num_classes, feat_dim))

    def forward(self, feats: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """``feats (B, feat_dim)``, ``labels (B,)`` -> ``{loss_name: scalar}``."""
        diff = feats.float() - self.centers[labels.long()]
        return self.named(0.5 * diff.pow(2).sum(1).mean())
