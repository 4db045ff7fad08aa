"""Resize a learned 2-D positional embedding to a new grid (ViT patch grid, RN50 attention pool)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from promptsg.errors import ConfigError


def resize_pos_embed_2d(
    pos_embed: torch.Tensor,
    src_grid: tuple[int, int],
    dst_grid: tuple[int, int],
    cls_token: bool = True,
) -> torch.Tensor:
    """Resize ``pos_embed`` (1 + h0*w0, C) or (h0*w0, C) from grid (h0, w0) to (h, w).

    The grid part is interpolated bicubically in 2-D (rows and columns separately, antialiased
    when shrinking, as open_clip does); a leading class-token row (``cls_token=True``) is kept
    as is. Returns ``pos_embed`` itself when ``dst_grid == src_grid``.
    """
    src_grid, dst_grid = tuple(src_grid), tuple(dst_grid)
    if dst_grid == src_grid:
        return pos_embed
    if min(dst_grid) < 1:
        raise ConfigError(f'cannot resize a positional embedding to grid {dst_grid}')
    n_prefix = 1 if cls_token else 0
    expected = n_prefix + src_grid[0] * src_grid[1]
    if pos_embed.ndim != 2 or pos_embed.shape[0] != expected:
        raise ConfigError(
            f'positional embedding of shape {tuple(pos_embed.shape)} does not fit grid {src_grid}'
            f' ({"with" if cls_token else "without"} class token: expected {expected} rows)'
        )
    prefix, grid = pos_embed[:n_prefix], pos_embed[n_prefix:]
    channels = grid.shape[1]
    grid = grid.float().reshape(1, src_grid[0], src_grid[1], channels).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=dst_grid, mode='bicubic', antialias=True, align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(dst_grid[0] * dst_grid[1], channels)
    return torch.cat([prefix, grid.to(pos_embed.dtype)], dim=0)
