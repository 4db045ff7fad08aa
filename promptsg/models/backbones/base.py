"""What the CLIP image backbones share: building, input size, freezing and the text encoder."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from mmengine.model import BaseModule
from open_clip.model import CLIP
from torch import nn

from promptsg.errors import ConfigError
from promptsg.models.backbones.clip_builder import build_clip
from promptsg.models.prompts.text_encoder import CLIPTextEncoder


class CLIPImageBackbone(BaseModule):
    """Base of ``CLIPViT`` and ``CLIPResNet``: an open_clip image tower plus CLIP's text encoder.

    Subclasses name their tower type, stride, blocks and head; this class builds the CLIP,
    keeps ``visual`` (and ``text_encoder`` when ``with_text``), validates ``img_size`` and
    applies ``unfreeze_blocks``. No ``init_cfg``: ``init_weights()`` leaves CLIP's weights alone.
    """

    #: Words for the trainable blocks in messages, e.g. 'transformer blocks'.
    block_kind = 'blocks'

    def __init__(
        self,
        arch: str,
        pretrained: str | os.PathLike | None = None,
        img_size: int | Sequence[int] = (256, 128),
        unfreeze_blocks: int = -1,
        with_text: bool = True,
    ) -> None:
        super().__init__(init_cfg=None)
        self.arch = arch
        clip_model = build_clip(arch, pretrained)
        self._check_tower(clip_model)
        self.visual = clip_model.visual
        self._adapt_tower()
        self.img_size = self._parse_img_size(img_size)
        self.grid_size = self._grid_of(self.img_size)
        self.num_tokens = self.grid_size[0] * self.grid_size[1]
        self._resize_to_grid()
        self.text_encoder = CLIPTextEncoder.from_clip(clip_model, arch) if with_text else None
        del clip_model  # the CLIP's text parts now live only in text_encoder (or nowhere)
        self.unfreeze_blocks = unfreeze_blocks
        self._freeze(unfreeze_blocks)

    # -- to be provided by subclasses ------------------------------------------------------
    def _check_tower(self, clip_model: CLIP) -> None:
        raise NotImplementedError

    def _adapt_tower(self) -> None:
        """Change the tower's structure before the grid is computed (e.g. RN50 last_stride)."""

    @property
    def stride(self) -> tuple[int, int]:
        """Input pixels per output token, (sh, sw)."""
        raise NotImplementedError

    @property
    def num_states(self) -> int:
        """How many intermediate states ``forward_states`` offers (k = 1..num_states)."""
        return len(self._state_blocks()) - 1

    def _state_blocks(self) -> list[nn.Module]:
        """The last blocks whose outputs ``forward_states`` can read, first to last."""
        raise NotImplementedError

    def check_states(self, states: Sequence[int]) -> None:
        """Each k in ``states`` must be 1..num_states; otherwise a ConfigError naming them."""
        bad = [k for k in states if not 1 <= k <= self.num_states]
        if bad:
            choices = [f'img_state_{k}' for k in range(1, self.num_states + 1)]
            raise ConfigError(
                f"arch '{self.arch}' has no visual state(s) {[f'img_state_{k}' for k in bad]}; "
                f'it offers {choices or "none"} ({self._state_words()})'
            )

    def _state_words(self) -> str:
        return 'one per block before the last'

    def forward_states(
        self, x: torch.Tensor, states: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]:
        """``forward(x)`` plus ``{k: (B, D)}``, the global feature read k blocks before the last."""
        raise NotImplementedError

    @property
    def embed_dim(self) -> int:
        raise NotImplementedError

    def _resize_to_grid(self) -> None:
        raise NotImplementedError

    def _blocks(self) -> list[nn.Module]:
        """The blocks that ``unfreeze_blocks`` counts, first to last."""
        raise NotImplementedError

    def _unfreeze_head(self) -> None:
        """Make the parts after the last block trainable."""
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------------
    def _parse_img_size(self, img_size) -> tuple[int, int]:
        if isinstance(img_size, int) and not isinstance(img_size, bool):
            size = (img_size, img_size)
        elif (
            isinstance(img_size, Sequence)
            and len(img_size) == 2
            and all(isinstance(s, int) and not isinstance(s, bool) for s in img_size)
        ):
            size = (img_size[0], img_size[1])
        else:
            raise ConfigError(f'img_size must be an int or (H, W) of ints; got {img_size!r}')
        stride_h, stride_w = self.stride
        if min(size) <= 0 or not self._fits(size):
            raise ConfigError(
                f"img_size {img_size!r} does not fit arch '{self.arch}': H must be a positive "
                f'multiple of {stride_h} and W of {stride_w} ({self._stride_words()})'
            )
        return size

    def _stride_words(self) -> str:
        return 'the stride'

    def _fits(self, size: tuple[int, int]) -> bool:
        """Whether an input of ``size`` (H, W) tiles exactly into output tokens."""
        return size[0] % self.stride[0] == 0 and size[1] % self.stride[1] == 0

    def _grid_of(self, size: tuple[int, int]) -> tuple[int, int]:
        """Output-token grid (h, w) of an input of ``size`` (H, W)."""
        return size[0] // self.stride[0], size[1] // self.stride[1]

    def _freeze(self, unfreeze_blocks: int) -> None:
        blocks = self._blocks()
        if (
            not isinstance(unfreeze_blocks, int)
            or isinstance(unfreeze_blocks, bool)
            or not -1 <= unfreeze_blocks <= len(blocks)
        ):
            raise ConfigError(
                f'unfreeze_blocks must be -1 (train the whole image encoder) or 0..{len(blocks)} '
                f"(last {self.block_kind} of '{self.arch}' to train); got {unfreeze_blocks!r}"
            )
        if unfreeze_blocks == -1:
            return
        self.visual.requires_grad_(False)
        if unfreeze_blocks > 0:
            for block in blocks[-unfreeze_blocks:]:
                block.requires_grad_(True)
            self._unfreeze_head()

    def frozen_modules(self) -> list[nn.Module]:
        """Largest submodules of ``visual`` that hold parameters, none of them trainable."""
        found = []

        def visit(module: nn.Module) -> None:
            params = list(module.parameters())
            if not params:
                return
            if not any(p.requires_grad for p in params):
                found.append(module)
                return
            for child in module.children():
                visit(child)

        visit(self.visual)
        return found

    def train(self, mode: bool = True) -> CLIPImageBackbone:
        """Set the mode, keeping frozen parts (e.g. BatchNorm of frozen RN50 stages) in eval."""
        super().train(mode)
        if mode:
            for module in self.frozen_modules():
                module.eval()
        return self

    def _check_input(self, x: torch.Tensor) -> None:
        height, width = self.img_size
        if x.ndim != 4 or x.shape[1] != 3 or tuple(x.shape[-2:]) != self.img_size:
            raise ConfigError(
                f'backbone input of shape {tuple(x.shape)} does not match img_size: expected '
                f'(B, 3, {height}, {width}); resize the images or set the backbone img_size'
            )
