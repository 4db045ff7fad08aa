"""Inversion networks: the image embedding v (B, D) → one pseudo-token s* (B, T)."""

from __future__ import annotations

from torch import Tensor, nn

from promptsg.errors import ConfigError
from promptsg.registry import PROMPT_MODULES

VARIANTS = ('simple', 'paper')


@PROMPT_MODULES.register_module()
class InversionNetwork(nn.Module):
    """Map the image embedding into the text encoder's token-embedding space.

    ``variant='simple'``: Linear → ReLU → Linear → BatchNorm.
    ``variant='paper'`` (PromptSG): three Linear layers with ReLU between them, ``hidden_dim``
    (512) wide, BatchNorm after the last.

    Args:
        in_dim: D, width of the image embedding (set by the model from the backbone).
        token_dim: T, width of the text encoder's token embeddings (set by the model).
    """

    def __init__(
        self, in_dim: int, token_dim: int, variant: str = 'paper', hidden_dim: int = 512
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ConfigError(f"inversion variant '{variant}' is not one of {list(VARIANTS)}")
        self.variant = variant
        if variant == 'simple':
            layers = [nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True)]
        else:
            layers = [nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True)]
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.ReLU(inplace=True)]
        layers += [nn.Linear(hidden_dim, token_dim), nn.BatchNorm1d(token_dim)]
        self.mlp = nn.Sequential(*layers)

    def forward(self, img_feat: Tensor) -> Tensor:
        """``img_feat`` (B, D) → pseudo-token s* (B, T)."""
        return self.mlp(img_feat)
