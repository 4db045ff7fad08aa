"""ArcFace head: additive angular margin logits (Deng et al., CVPR 2019)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from promptsg.errors import ConfigError
from promptsg.losses.base import full_precision
from promptsg.registry import HEADS

#: Lower bound of ``1 - cos²`` under the square root: keeps sin θ and its gradient finite
#: at cos θ = ±1 exactly (and when rounding pushes |cos θ| slightly above 1).
_SIN2_EPS = 1e-7


@HEADS.register_module()
class ArcFaceHead(nn.Module):
    """Cosine classifier with an additive angular margin on the target class.

    ``forward(feat (B, C))`` returns ``s·cos θ (B, num_classes)`` (inference, validation);
    ``forward(feat, labels (B,))`` returns the margin logits for training: the target logit
    becomes ``s·cos(θ + m)``. Past θ = π − m, where cos(θ + m) would stop decreasing, it
    falls back to ``s·(cos θ − m·sin m)`` (the "th/mm" rule of the reference code);
    ``easy_margin`` instead keeps ``s·cos θ`` wherever cos θ ≤ 0. With m = 0 both equal
    ``s·cos θ``. Logits are float32 even under autocast.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        scale: float = 30.0,
        margin: float = 0.5,
        easy_margin: bool = False,
    ) -> None:
        super().__init__()
        if in_channels < 1:
            raise ConfigError(f'ArcFaceHead: in_channels must be >= 1, got {in_channels}')
        if num_classes < 1:
            raise ConfigError(f'ArcFaceHead: num_classes must be >= 1, got {num_classes}')
        if not scale > 0:
            raise ConfigError(f'ArcFaceHead: scale must be > 0, got {scale}')
        if not 0 <= margin < math.pi / 2:
            raise ConfigError(f'ArcFaceHead: margin must be in [0, pi/2) radians, got {margin}')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.scale = float(scale)
        self.margin = float(margin)
        self.easy_margin = easy_margin
        self.weight = nn.Parameter(torch.empty(num_classes, in_channels))
        nn.init.xavier_uniform_(self.weight)

    def cosine(self, feat: Tensor) -> Tensor:
        """cos θ between ``feat (B, C)`` and each class weight: ``(B, num_classes)``, float32."""
        return F.linear(F.normalize(feat.float(), dim=1), F.normalize(self.weight.float(), dim=1))

    @full_precision
    def forward(self, feat: Tensor, labels: Tensor | None = None) -> Tensor:
        """``feat (B, C)``, optional ``labels (B,)`` -> logits ``(B, num_classes)``."""
        cos = self.cosine(feat)
        if labels is None:
            return cos * self.scale
        m = self.margin
        sin = torch.sqrt((1.0 - cos * cos).clamp(min=_SIN2_EPS))
        cos_margin = cos * math.cos(m) - sin * math.sin(m)
        if self.easy_margin:
            cos_margin = torch.where(cos > 0, cos_margin, cos)
        else:
            cos_margin = torch.where(cos > math.cos(math.pi - m), cos_margin, cos - m * math.sin(m))
        target = F.one_hot(labels.long(), self.num_classes).bool()
        return torch.where(target, cos_margin, cos) * self.scale
