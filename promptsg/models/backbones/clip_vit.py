"""CLIP ViT image encoder (any open_clip class-token ViT) as a ReID backbone."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from open_clip.model import CLIP
from open_clip.transformer import VisionTransformer
from torch import nn

from promptsg.errors import ConfigError, DataError
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

    CLIP-ReID's options (Li et al., AAAI 2023, after TransReID):

    - **OLP** (overlapping patches): ``patch_stride`` < patch size (12 for ViT-B/16) slides the
      patch embedding with that stride; the grid is ``((H - P) // S + 1, (W - P) // S + 1)``
      (21 × 10 for 256 × 128 at P = 16, S = 12) and the positional embedding is resized to it.
    - **SIE** (side information embedding): with ``sie_cameras`` C (and/or ``sie_views`` V)
      a learned table of C·V (or C, or V) vectors of the encoder's width; ``forward(x, camid,
      viewid)`` adds ``sie_coef ×`` the row of ``camid · V + viewid`` to the class token
      before the transformer (as the official code). Without ids, or at ``sie_coef=0``, the
      output is the plain encoder's.
    """

    block_kind = 'transformer blocks'

    def __init__(
        self,
        arch: str = 'ViT-B-16',
        pretrained: str | os.PathLike | None = None,
        img_size: int | Sequence[int] = (256, 128),
        unfreeze_blocks: int = -1,
        with_text: bool = True,
        patch_stride: int | None = None,
        sie_cameras: int = 0,
        sie_views: int = 0,
        sie_coef: float = 1.0,
    ) -> None:
        for key, value in (('sie_cameras', sie_cameras), ('sie_views', sie_views)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f'CLIPViT: {key} must be an int >= 0; got {value!r}')
        if isinstance(sie_coef, bool) or not isinstance(sie_coef, int | float):
            raise ConfigError(f'CLIPViT: sie_coef must be a number; got {sie_coef!r}')
        self._patch_stride = patch_stride
        super().__init__(arch, pretrained, img_size, unfreeze_blocks, with_text)
        self.sie_cameras, self.sie_views, self.sie_coef = sie_cameras, sie_views, float(sie_coef)
        rows = max(sie_cameras, 1) * max(sie_views, 1)
        if self.sie_enabled:
            width = self.visual.class_embedding.shape[0]
            self.sie_embed = nn.Parameter(nn.init.trunc_normal_(torch.zeros(rows, width), std=0.02))
            self.visual.ln_pre.register_forward_pre_hook(self._add_side_info)
        self._cls_offset: torch.Tensor | None = None

    @property
    def sie_enabled(self) -> bool:
        """Whether the encoder takes camera / viewpoint ids (SIE)."""
        return bool(self.sie_cameras or self.sie_views)

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
    def patch_size(self) -> tuple[int, int]:
        return tuple(self.visual.patch_size)

    @property
    def stride(self) -> tuple[int, int]:
        if self._patch_stride is None:
            return self.patch_size
        return (self._patch_stride, self._patch_stride)

    def _stride_words(self) -> str:
        return 'the patch size' if self._patch_stride is None else 'the patch stride (OLP)'

    def _fits(self, size: tuple[int, int]) -> bool:
        if self._patch_stride is None:
            return super()._fits(size)
        stride = self._patch_stride
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise ConfigError(f'CLIPViT: patch_stride must be None or an int >= 1; got {stride!r}')
        if stride > min(self.patch_size):
            raise ConfigError(
                f'CLIPViT: patch_stride {stride} is larger than the patch size '
                f'{self.patch_size}; overlapping patches need a stride <= the patch size'
            )
        return size[0] >= self.patch_size[0] and size[1] >= self.patch_size[1]

    def _grid_of(self, size: tuple[int, int]) -> tuple[int, int]:
        (ph, pw), (sh, sw) = self.patch_size, self.stride
        return (size[0] - ph) // sh + 1, (size[1] - pw) // sw + 1

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
        visual.conv1.stride = self.stride  # the patch size, or the OLP stride
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

    def side_embedding(
        self, camid: torch.Tensor | None = None, viewid: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """SIE offset of the class token, (B, width), or None (SIE off or no ids given)."""
        if not self.sie_enabled:
            return None
        index = None
        if self.sie_cameras and camid is not None:
            index = self._check_ids('camid', camid, self.sie_cameras)
            if self.sie_views:
                if viewid is None:  # camid alone would pick another camera's row
                    raise DataError(
                        f'SIE over {self.sie_cameras} cameras x {self.sie_views} views needs a '
                        'viewid with each camid'
                    )
                index = index * self.sie_views + self._check_ids('viewid', viewid, self.sie_views)
        elif self.sie_views and not self.sie_cameras and viewid is not None:
            index = self._check_ids('viewid', viewid, self.sie_views)
        if index is None:
            return None
        return self.sie_coef * self.sie_embed[index]

    def _check_ids(self, key: str, ids: torch.Tensor, count: int) -> torch.Tensor:
        ids = torch.as_tensor(ids, device=self.sie_embed.device).long()
        if torch.jit.is_tracing():  # an ONNX export: the ids are graph inputs, not values
            return ids
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= count):
            raise DataError(
                f'{key} {ids.tolist()} out of range for SIE with {count} '
                f'{"cameras" if key == "camid" else "views"} (0..{count - 1}); set '
                f"backbone.sie_{'cameras' if key == 'camid' else 'views'} to the data set's count"
            )
        return ids

    def _add_side_info(self, module: nn.Module, args: tuple) -> tuple | None:
        """Forward pre-hook of ``ln_pre``: add the SIE offset to the class token."""
        if self._cls_offset is None:
            return None
        x = args[0]
        offset = self._cls_offset.to(x.dtype)
        return (torch.cat([x[:, :1] + offset[:, None], x[:, 1:]], dim=1), *args[1:])

    def forward(
        self,
        x: torch.Tensor,
        camid: torch.Tensor | None = None,
        viewid: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) -> global (B, D), patch tokens (B, N, D), both in CLIP's joint space;
        ``camid``/``viewid`` (B,) feed SIE when it is on (ignored otherwise)."""
        self._check_input(x)
        self._cls_offset = self.side_embedding(camid, viewid)
        try:
            pooled, tokens = self.visual(x)
        finally:
            self._cls_offset = None
        return pooled, tokens @ self.visual.proj

    @property
    def branch_dims(self) -> dict[str, int]:
        """Widths of :meth:`forward_branches`' ``pre_proj`` and ``inner`` features."""
        width = self.visual.proj.shape[0]
        return {'pre_proj': width, 'inner': width}

    def forward_branches(
        self,
        x: torch.Tensor,
        camid: torch.Tensor | None = None,
        viewid: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The three CLS features CLIP-ReID's image encoder returns, for its two-branch heads:
        ``global`` (B, D) as :meth:`forward` (ln_post, then proj), ``pre_proj`` (B, W) the same
        CLS before proj, and ``inner`` (B, W) the raw CLS after the block before the last."""
        self._check_input(x)
        visual = self.visual
        self._cls_offset = self.side_embedding(camid, viewid)
        try:
            h = visual._embeds(x)  # ln_pre's pre-hook adds the SIE offset
        finally:
            self._cls_offset = None
        transformer = visual.transformer
        if not transformer.batch_first:
            h = h.transpose(0, 1)
        blocks = list(transformer.resblocks)
        for block in blocks[:-1]:
            h = block(h)
        inner = h[:, 0] if transformer.batch_first else h[0]
        h = blocks[-1](h)
        if not transformer.batch_first:
            h = h.transpose(0, 1)
        pooled, _ = visual._pool(h)
        return {'global': pooled @ visual.proj, 'pre_proj': pooled, 'inner': inner}

    def forward_states(
        self,
        x: torch.Tensor,
        states: Sequence[int],
        camid: torch.Tensor | None = None,
        viewid: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]:
        """``forward(x, camid, viewid)`` plus ``{k: (B, D)}``: the CLS token after the k-th block
        before the last, through ln_post and proj (the same map as the global feature)."""
        self.check_states(states)
        self._check_input(x)
        visual = self.visual
        self._cls_offset = self.side_embedding(camid, viewid)
        try:
            h = visual._embeds(x)  # ln_pre's pre-hook adds the SIE offset
        finally:
            self._cls_offset = None
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
