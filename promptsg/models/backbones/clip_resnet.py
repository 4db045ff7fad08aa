"""CLIP ModifiedResNet image encoder (RN50 and kin) as a ReID backbone."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from open_clip.model import CLIP
from open_clip.modified_resnet import ModifiedResNet
from torch import nn

from promptsg.errors import ConfigError
from promptsg.models.backbones.base import CLIPImageBackbone
from promptsg.models.backbones.pos_embed import resize_pos_embed_2d
from promptsg.registry import BACKBONES

LAST_STRIDES = (1, 2)


@BACKBONES.register_module()
class CLIPResNet(CLIPImageBackbone):
    """open_clip ``ModifiedResNet`` returning the attention-pool feature and dense grid tokens.

    ``forward(x)`` with x (B, 3, H, W), normalised, ``(H, W) == img_size``: stem, layer1..4,
    feature map (B, C, h, w) with h = H / s, w = W / s (s = 32, or 16 with ``last_stride=1``);
    returns ``(global, tokens)``: global (B, D) is the attention pool's output (D = 1024 for
    RN50); tokens (B, h*w, D) read each grid position MaskCLIP-style as c_proj(v_proj(x_i +
    pos_i)), the value the attention pool computes for that position (computed once and shared
    with the pool). The global feature is (per head) a convex combination of these values, so
    both live in CLIP's joint space. The attention-pool positional embedding is resized
    bicubically in 2-D to the h x w grid (the identity at the native size and stride 32).

    ``last_stride=1`` (CLIP-ReID) removes layer4's 2x downsampling: a 16x8 grid at 256x128
    instead of 8x4, same weights. ``unfreeze_blocks`` N >= 0 trains only the last N of the
    stages layer1..layer4 (plus attnpool when N > 0); -1 trains the whole image encoder (N = 4
    leaves the stem frozen).

    Intermediate states (``forward_states``): ``img_state_k`` is the attention pool applied to
    the output of layer4's k-th block before its last (RN50: k = 1, 2), the residual
    counterpart of ViT's intermediate CLS states; each is a (B, D) global in the joint space.
    """

    block_kind = 'residual stages'

    def __init__(
        self,
        arch: str = 'RN50',
        pretrained: str | os.PathLike | None = None,
        img_size: int | Sequence[int] = (256, 128),
        unfreeze_blocks: int = -1,
        with_text: bool = True,
        last_stride: int = 2,
    ) -> None:
        if last_stride not in LAST_STRIDES or isinstance(last_stride, bool):
            raise ConfigError(
                f'last_stride must be one of {list(LAST_STRIDES)}; got {last_stride!r}'
            )
        self._last_stride = last_stride
        super().__init__(arch, pretrained, img_size, unfreeze_blocks, with_text)

    def _check_tower(self, clip_model: CLIP) -> None:
        if not isinstance(clip_model.visual, ModifiedResNet):
            raise ConfigError(
                f"arch '{self.arch}' has a {type(clip_model.visual).__name__} image tower, not a "
                'ModifiedResNet; use CLIPViT for ViT archs'
            )

    def _adapt_tower(self) -> None:
        """``last_stride=1``: drop the average pools that downsample layer4's first block."""
        if self._last_stride == 1:
            first = self.visual.layer4[0]
            first.avgpool = nn.Identity()
            if first.downsample is not None:
                first.downsample[0] = nn.Identity()  # its leading AvgPool2d; conv and BN stay
            first.stride = 1

    @property
    def last_stride(self) -> int:
        return self._last_stride

    @property
    def stride(self) -> tuple[int, int]:
        side = 16 * self._last_stride
        return (side, side)

    def _stride_words(self) -> str:
        return f'the stride with last_stride={self._last_stride}'

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

    def _state_blocks(self) -> list[nn.Module]:
        return list(self.visual.layer4)

    def _state_words(self) -> str:
        return "the attention pool over layer4's blocks before the last"

    def _unfreeze_head(self) -> None:
        self.visual.attnpool.requires_grad_(True)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> layer4 feature map (B, C, h, w)."""
        return self._feature_maps(x, ())[0]

    def _feature_maps(
        self, x: torch.Tensor, states: Sequence[int]
    ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """The layer4 map and ``{k: map after layer4's k-th block before the last}``."""
        self._check_input(x)
        visual = self.visual
        x = visual.layer3(visual.layer2(visual.layer1(visual.stem(x))))
        blocks = list(visual.layer4)
        inner = {}
        for i, block in enumerate(blocks):
            x = block(x)
            k = len(blocks) - 1 - i
            if k in states:
                inner[k] = x
        return x, inner

    def pool(
        self, feature_map: torch.Tensor, with_tokens: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, C, h, w) -> attention-pool global (B, D), dense value tokens (B, h*w, D).

        CLIP's attention pool (query: the mean token; keys/values: mean + grid tokens, with
        the positional embedding), written out so the value projection serves both outputs.
        """
        attnpool = self.visual.attnpool
        x = feature_map.flatten(2).transpose(1, 2)  # (B, N, C)
        x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1)
        x = x + attnpool.positional_embedding.to(x.dtype)
        heads = attnpool.num_heads

        def split(t: torch.Tensor) -> torch.Tensor:  # (B, L, C) -> (B, heads, L, C / heads)
            return t.unflatten(-1, (heads, -1)).transpose(1, 2)

        value = attnpool.v_proj(x)
        query, key = attnpool.q_proj(x[:, :1]), attnpool.k_proj(x)
        pooled = F.scaled_dot_product_attention(split(query), split(key), split(value))
        global_feat = attnpool.c_proj(pooled.transpose(1, 2).flatten(2)[:, 0])
        tokens = attnpool.c_proj(value[:, 1:]) if with_tokens else None
        return global_feat, tokens

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) -> global (B, D), grid tokens (B, N, D), both in CLIP's joint space."""
        return self.pool(self.feature_map(x))

    @property
    def branch_dims(self) -> dict[str, int]:
        """Widths of :meth:`forward_branches`' ``pre_proj`` and ``inner`` features."""
        channels = self.visual.attnpool.c_proj.in_features  # layer4's output channels
        return {'pre_proj': channels, 'inner': channels // 2}

    def forward_branches(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The three features CLIP-ReID's ResNet image encoder returns, for its two-branch
        heads: ``global`` (B, D) the attention pool over layer4 as :meth:`forward`,
        ``pre_proj`` (B, C) layer4 average-pooled and ``inner`` (B, C / 2) layer3
        average-pooled."""
        self._check_input(x)
        visual = self.visual
        x3 = visual.layer3(visual.layer2(visual.layer1(visual.stem(x))))
        x4 = visual.layer4(x3)
        global_feat, _ = self.pool(x4, with_tokens=False)
        return {
            'global': global_feat,
            'pre_proj': x4.mean(dim=(2, 3)),
            'inner': x3.mean(dim=(2, 3)),
        }

    def forward_states(
        self, x: torch.Tensor, states: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]:
        """``forward(x)`` plus ``{k: (B, D)}``: the attention pool over layer4's k-th block
        before the last."""
        self.check_states(states)
        fmap, inner = self._feature_maps(x, states)
        global_feat, tokens = self.pool(fmap)
        return (
            global_feat,
            tokens,
            {k: self.pool(m, with_tokens=False)[0] for k, m in inner.items()},
        )
