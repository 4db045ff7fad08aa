"""CLIP ViT image encoder (any open_clip class-token ViT) as a ReID backbone."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from open_clip.model import CLIP
from open_clip.transformer import VisionTransformer
from torch import nn

from promptsg.errors import ConfigError
from promptsg.models.backbones.base import CLIPImageBackbone
from promptsg.models.backbones.pos_embed import resize_pos_embed_2d
from promptsg.registry import BACKBONES


@BACKBONES.register_module()
class CLIPViT(CLIPImageBackbone):
    """open_clip ``VisionTransformer`` returning the CLS feature and the patch tokens.

    ``forward(x)`` with x (B, 3, H, W), normalised, ``(H, W) == img_size`` returns
    ``(global (B, D), tokens (B, N, D))``: global = ln_post(CLS) @ proj, tokens =
    ln_post(patch tokens) @ proj, N = (H / patch) * (W / patch), row-major over the patch grid.
    The positional embedding is resized bicubically in 2-D to the patch grid of ``img_size``.
    ``unfreeze_blocks`` N >= 0 trains only the last N transformer blocks (plus ln_post and
    proj when N > 0; the patch embedding, class/positional embeddings and ln_pre stay frozen);
    -1 trains the whole image encoder. ``text_encoder`` is CLIP's frozen text encoder when
    ``with_text``. ``forward_states`` adds ``img_state_k``: the CLS token after the k-th block
    before the last through ln_post and proj (ViT-B/16: k = 1..11), for losses on several
    visual states (CLIP-ReID, PromptSG §4.3).
    """

    block_kind = 'transformer blocks'

    def __init__(
        self,
        arch: str = 'ViT-B-16',
        pretrained: str | os.PathLike | None = None,
        img_size: int | Sequence[int] = (256, 128),
        unfreeze_blocks: int = -1,
        with_text: bool = True,
    ) -> None:
        super().__init__(arch, pretrained, img_size, unfreeze_blocks, with_text)

    def _check_tower(self, clip_model: CLIP) -> None:
        visual = clip_model.visual
        if not isinstance(visual, VisionTransformer):
            raise ConfigError(
                f"arch '{self.arch}' has a {type(visual).__name__} image tower, not a ViT; "
                'use CLIPResNet for ResNet archs'
            )
        if visual.attn_pool is not None or visual.pool_type != 'tok' or visual.proj is None:
            raise ConfigError(
                f"arch '{self.arch}' does not pool by class token with a projection; "
                'CLIPViT needs a CLIP-style ViT'
            )
        if visual.final_ln_after_pool:
            raise ConfigError(f"arch '{self.arch}' applies ln_post after pooling; not supported")

    @property
    def stride(self) -> tuple[int, int]:
        return tuple(self.visual.patch_size)

    def _stride_words(self) -> str:
        return 'the patch size'

    @property
    def embed_dim(self) -> int:
        return self.visual.proj.shape[1]

    def _resize_to_grid(self) -> None:
        visual = self.visual
        old = visual.positional_embedding
        if tuple(visual.grid_size) != self.grid_size:
            new = resize_pos_embed_2d(old.detach(), visual.grid_size, self.grid_size)
            visual.positional_embedding = nn.Parameter(new, requires_grad=old.requires_grad)
        visual.grid_size = self.grid_size
        visual.image_size = self.img_size
        visual.output_tokens = True  # forward returns (pooled, tokens)

    def _blocks(self) -> list[nn.Module]:
        return list(self.visual.transformer.resblocks)

    def _unfreeze_head(self) -> None:
        self.visual.ln_post.requires_grad_(True)
        self.visual.proj.requires_grad_(True)

    def _state_blocks(self) -> list[nn.Module]:
        return self._blocks()

    def _state_words(self) -> str:
        return 'the CLS token after each transformer block before the last'

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) -> global (B, D), patch tokens (B, N, D), both in CLIP's joint space."""
        self._check_input(x)
        pooled, tokens = self.visual(x)
        return pooled, tokens @ self.visual.proj

    def forward_states(
        self, x: torch.Tensor, states: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]:
        """``forward(x)`` plus ``{k: (B, D)}``: the CLS token after the k-th block before the
        last, through ln_post and proj (the same map as the global feature)."""
        self.check_states(states)
        self._check_input(x)
        visual = self.visual
        h = visual._embeds(x)
        transformer = visual.transformer
        if not transformer.batch_first:
            h = h.transpose(0, 1)
        blocks = list(transformer.resblocks)
        cls_states = {}
        for i, block in enumerate(blocks):
            h = block(h)
            k = len(blocks) - 1 - i
            if k in states:
                cls_states[k] = h[:, 0] if transformer.batch_first else h[0]
        if not transformer.batch_first:
            h = h.transpose(0, 1)
        pooled, tokens = visual._pool(h)
        states_out = {k: visual.ln_post(v) @ visual.proj for k, v in cls_states.items()}
        return pooled @ visual.proj, tokens @ visual.proj, states_out
