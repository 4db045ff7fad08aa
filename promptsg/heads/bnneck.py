"""BNNeck: optional reduction Linear, then BatchNorm (Luo et al., 2019)."""

from __future__ import annotations

from torch import Tensor, nn

from promptsg.errors import ConfigError
from promptsg.registry import HEADS


@HEADS.register_module()
class BNNeck(nn.Module):
    """``feat (B, C) -> (B, C')``: ``reduction`` Linear to ``bnneck_dim`` (optional), then BN.

    The reduction Linear has no bias: the BatchNorm right after it subtracts the batch mean,
    so a bias there would get no gradient. Every part trains by default (SPEC §2, §5.5: the
    earlier implementation left the neck out of the optimiser); ``freeze_bias=True`` freezes the
    BN shift at zero as in "Bag of Tricks and a Strong Baseline for Deep Person
    Re-identification" (Luo et al., 2019).
    """

    def __init__(
        self, in_channels: int, bnneck_dim: int | None = None, freeze_bias: bool = False
    ) -> None:
        super().__init__()
        if in_channels < 1:
            raise ConfigError(f'BNNeck: in_channels must be >= 1, got {in_channels}')
        if bnneck_dim is not None and bnneck_dim < 1:
            raise ConfigError(f'BNNeck: bnneck_dim must be None or >= 1, got {bnneck_dim}')
        self.in_channels = in_channels
        self.out_channels = bnneck_dim or in_channels
        self.reduction = (
            nn.Linear(in_channels, bnneck_dim, bias=False) if bnneck_dim else nn.Identity()
        )
        self.bn = nn.BatchNorm1d(self.out_channels)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        self.bn.bias.requires_grad_(not freeze_bias)

    def forward(self, feat: Tensor) -> Tensor:
        """``feat (B, in_channels) -> (B, out_channels)``."""
        return self.bn(self.reduction(feat))
