"""Linear identity classifier on the retrieval (or BNNeck) feature."""

from __future__ import annotations

from torch import Tensor, nn

from promptsg.errors import ConfigError
from promptsg.registry import HEADS


@HEADS.register_module()
class LinearClassifier(nn.Module):
    """ID classifier: ``feat (B, C) -> logits (B, num_classes)``.

    Weights start from N(0, 0.001²) and the bias (off by default) from zero, as in the ReID
    strong baseline (Luo et al., 2019), so the first logits are near uniform.
    """

    def __init__(self, in_channels: int, num_classes: int, bias: bool = False) -> None:
        super().__init__()
        if in_channels < 1:
            raise ConfigError(f'LinearClassifier: in_channels must be >= 1, got {in_channels}')
        if num_classes < 1:
            raise ConfigError(f'LinearClassifier: num_classes must be >= 1, got {num_classes}')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.fc = nn.Linear(in_channels, num_classes, bias=bias)
        nn.init.normal_(self.fc.weight, std=0.001)
        if bias:
            nn.init.zeros_(self.fc.bias)

    def forward(self, feat: Tensor) -> Tensor:
        """``feat (B, C) -> logits (B, num_classes)``."""
        return self.fc(feat)
