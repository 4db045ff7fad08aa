"""CosFace: large margin cosine logits (Wang et al., CVPR 2018) and their cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from promptsg.errors import ConfigError
from promptsg.losses.base import WeightedLoss
from promptsg.registry import HEADS, LOSSES


@HEADS.register_module()
class CosFaceHead(nn.Module):
    """Cosine classifier with an additive cosine margin on the target class.

    ``forward(feat (B, C))`` returns ``s·cos θ (B, num_classes)`` (validation, inference);
    ``forward(feat, labels (B,))`` returns the training logits, where the target class gets
    ``s·(cos θ − m)``. The model passes ``labels`` because ``forward`` names them.
    """

    def __init__(
        self, in_channels: int, num_classes: int, scale: float = 30.0, margin: float = 0.35
    ) -> None:
        super().__init__()
        if in_channels < 1 or num_classes < 1:
            raise ConfigError(
                f'CosFaceHead: in_channels and num_classes must be >= 1, got {in_channels}, '
                f'{num_classes}'
            )
        if not scale > 0:
            raise ConfigError(f'CosFaceHead: scale must be > 0, got {scale}')
        if not 0 <= margin < 1:
            raise ConfigError(f'CosFaceHead: margin must be in [0, 1), got {margin}')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.scale = float(scale)
        self.margin = float(margin)
        self.weight = nn.Parameter(torch.empty(num_classes, in_channels))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, feat: Tensor, labels: Tensor | None = None) -> Tensor:
        """``feat (B, C)``, optional ``labels (B,)`` -> logits ``(B, num_classes)``, float32."""
        cos = F.linear(F.normalize(feat.float(), dim=1), F.normalize(self.weight.float(), dim=1))
        if labels is not None:
            cos = cos - self.margin * F.one_hot(labels.long(), self.num_classes).to(cos.dtype)
        return cos * self.scale


@LOSSES.register_module()
class CosFaceLoss(WeightedLoss):
    """Cross-entropy on the training logits of :class:`CosFaceHead` (``logits (B, K)``, ``pid (B,)``).

    A plugin loss names the features it takes in its config: ``inputs=('logits', 'pid')``.
    """

    def __init__(
        self,
        label_smoothing: float = 0.0,
        loss_weight: float = 1.0,
        loss_name: str = 'loss_cosface',
    ) -> None:
        super().__init__(loss_weight, loss_name)
        if not 0 <= label_smoothing < 1:
            raise ConfigError(
                f'CosFaceLoss: label_smoothing must be in [0, 1), got {label_smoothing}'
            )
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """``logits (B, K)``, ``labels (B,)`` -> ``{loss_name: scalar}``."""
        loss = F.cross_entropy(logits.float(), labels.long(), label_smoothing=self.label_smoothing)
        return self.named(loss)
