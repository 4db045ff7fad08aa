"""Inversion networks: the image embedding v (B, D) → one pseudo-token s* (B, T)."""

from __future__ import annotations

import math

from torch import Tensor, nn

from promptsg.errors import ConfigError
from promptsg.registry import PROMPT_MODULES

VARIANTS = ('simple', 'paper')
OUTPUT_SCALES = ('batchnorm', 'token')


@PROMPT_MODULES.register_module()
class InversionNetwork(nn.Module):
    """Map the image embedding into the text encoder's token-embedding space.

    ``variant='simple'``: Linear → ReLU → Linear → BatchNorm.
    ``variant='paper'`` (PromptSG): three Linear layers with ReLU between them, ``hidden_dim``
    (512) wide, BatchNorm after the last.

    The final BatchNorm makes every coordinate of s* unit-variance at init, so ||s*|| starts
    near sqrt(T) (22.6 for T = 512) while CLIP's token embeddings have norms near 0.45.
    ``output_scale`` chooses where s* starts: 'batchnorm' (the paper: BN's affine weight 1) or
    'token' (BN's affine weight set to ``token_norm / sqrt(T)``, so ||s*|| starts at the mean
    token-embedding norm; the weight still trains). The model logs both norms in training
    (``pseudo_token_norm``, ``token_embed_norm``).

    Args:
        in_dim: D, width of the image embedding (set by the model from the backbone).
        token_dim: T, width of the text encoder's token embeddings (set by the model).
        token_norm: mean norm of the token embeddings (set by the model; used by 'token').
    """

    def __init__(
        self,
        in_dim: int,
        token_dim: int,
        variant: str = 'paper',
        hidden_dim: int = 512,
        output_scale: str = 'batchnorm',
        token_norm: float | None = None,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ConfigError(f"inversion variant '{variant}' is not one of {list(VARIANTS)}")
        if output_scale not in OUTPUT_SCALES:
            raise ConfigError(
                f"inversion output_scale '{output_scale}' is not one of {list(OUTPUT_SCALES)}"
            )
        self.variant = variant
        self.output_scale = output_scale
        if variant == 'simple':
            layers = [nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True)]
        else:
            layers = [nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True)]
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.ReLU(inplace=True)]
        layers += [nn.Linear(hidden_dim, token_dim), nn.BatchNorm1d(token_dim)]
        self.mlp = nn.Sequential(*layers)
        if output_scale == 'token':
            if token_norm is None or not token_norm > 0:
                raise ConfigError(
                    "inversion output_scale='token' needs the token-embedding norm "
                    f'token_norm > 0 (PromptSG sets it); got {token_norm!r}'
                )
            nn.init.constant_(self.mlp[-1].weight, token_norm / math.sqrt(token_dim))

    def forward(self, img_feat: Tensor) -> Tensor:
        """``img_feat`` (B, D) → pseudo-token s* (B, T)."""
        return self.mlp(img_feat)
