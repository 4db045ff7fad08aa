"""CLIP ModifiedResNet image encoder (RN50 and kin) as a ReID backbone."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch
from open_clip.model import CLIP
from open_clip.modified_resnet import ModifiedResNet
from torch import nn

from promptsg.errors import ConfigError
from promptsg.models.backbones.base import CLIPImageBackbone
from promptsg.models.backbones.pos_embed import resize_pos_embed_2d
from promptsg.registry import BACKBONES


@BACKBONES.register_module()
class CLIPResNet(CLIPImageBackbone):
    """open_clip ``ModifiedResNet`` returning the attention-pool feature and dense grid tokens.

    ``forward(x)`` with x (B, 3, H, W), normalised, ``(H, W) == img_size``: stem, layer1..4,
    feature map (B, C, h, w) with h = H / 32, w = W / 32; returns ``(global, tokens)``:
    global (B, D) is the attention pool's output (D = 1024 for RN50); tokens (B, h*w, D) read
    each grid position MaskCLIP-style as c_proj(v_proj(x_i + pos_i)), the value the attention
    pool computes for that position. The global feature is (per head) a convex combination of
    these values, so both live in CLIP's joint space. The attention-pool positional embedding
    is resized bicubically in 2-D to the h x w grid. ``unfreeze_blocks`` N >= 0 trains only the
    last N of the stages layer1..layer4 (plus attnpool when N > 0); -1 trains the whole image
    encoder (N = 4 leaves the stem frozen).
    """

    block_kind = 'residual stages'

    def __init__(
        self,
        arch: str = 'RN50',
        pretrained: str | os.PathLike | None = None,
        img_size: int | Sequence[int] = (256, 128),
        unfreeze_blocks: int = -1,
        with_text: bool = True,
    ) -> None:
        super().__init__(arch, pretrained, img_size, unfreeze_blocks, with_text)

    def _check_tower(self, clip_model: CLIP) -> None:
        if not isinstance(clip_model.visual, ModifiedResNet):
            raise ConfigError(
                f"arch '{self.arch}' has a {type(clip_model.visual).__name__} image tower, not a "
                'ModifiedResNet; use CLIPViT for ViT archs'
            )

    @property
    def stride(self) -> tuple[int, int]:
        return (32, 32)

    @property
    def embed_dim(self) -> int:
        return self.visual.attnpool.c_proj.out_features

    def _resize_to_grid(self) -> None:
        attnpool = self.visual.attnpool
        old = attnpool.positional_embedding
        side = math.isqrt(old.shape[0] - 1)
        if (side, side) != self.grid_size:
            new = resize_pos_embed_2d(old.detach(), (side, side), self.grid_size)
            attnpool.positional_embedding = nn.Parameter(new, requires_grad=old.requires_grad)
        self.visual.image_size = self.img_size

    def _blocks(self) -> list[nn.Module]:
        visual = self.visual
        return [visual.layer1, visual.layer2, visual.layer3, visual.layer4]

    def _unfreeze_head(self) -> None:
        self.visual.attnpool.requires_grad_(True)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> layer4 feature map (B, C, H/32, W/32)."""
        self._check_input(x)
        visual = self.visual
        x = visual.stem(x)
        return visual.layer4(visual.layer3(visual.layer2(visual.layer1(x))))

    def pool(self, feature_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, h, w) -> attention-pool global (B, D), dense value tokens (B, h*w, D)."""
        attnpool = self.visual.attnpool
        global_feat = attnpool(feature_map)
        x = feature_map.flatten(2).transpose(1, 2)
        x = x + attnpool.positional_embedding[1:].to(x.dtype)
        return global_feat, attnpool.c_proj(attnpool.v_proj(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) -> global (B, D), grid tokens (B, N, D), both in CLIP's joint space."""
        return self.pool(self.feature_map(x))
