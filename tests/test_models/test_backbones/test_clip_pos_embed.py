import pytest
import torch
import torch.nn.functional as F

from promptsg.errors import ConfigError
from promptsg.models.backbones.pos_embed import resize_pos_embed_2d


def _row_pattern(grid: tuple[int, int], channels: int = 4) -> torch.Tensor:
    """(h*w, C) grid embedding that depends on the row only."""
    rows = torch.arange(grid[0], dtype=torch.float32)[:, None, None]
    freqs = torch.arange(1, channels + 1, dtype=torch.float32)
    table = torch.sin(rows * freqs * 0.7).expand(grid[0], grid[1], channels)
    return table.reshape(grid[0] * grid[1], channels)


def test_identity_returns_input():
    pos = torch.randn(1 + 7 * 7, 8)
    assert resize_pos_embed_2d(pos, (7, 7), (7, 7)) is pos
    grid_only = torch.randn(4 * 2, 8)
    assert resize_pos_embed_2d(grid_only, (4, 2), (4, 2), cls_token=False) is grid_only


@pytest.mark.parametrize('dst', [(16, 8), (8, 4), (14, 8), (3, 5)])
def test_row_pattern_stays_row_only_and_cls_kept(dst):
    cls = torch.randn(1, 4)
    pos = torch.cat([cls, _row_pattern((7, 7))])
    out = resize_pos_embed_2d(pos, (7, 7), dst)
    assert out.shape == (1 + dst[0] * dst[1], 4)
    assert torch.equal(out[0], cls[0])
    grid = out[1:].reshape(dst[0], dst[1], 4)
    assert torch.allclose(grid, grid[:, :1].expand_as(grid), atol=1e-5)
    # rows still differ from one another: the pattern was not flattened away
    assert not torch.allclose(grid[0], grid[-1], atol=1e-3)


def test_column_pattern_stays_column_only_without_cls():
    pos = _row_pattern((7, 7)).reshape(7, 7, 4).transpose(0, 1).reshape(49, 4)
    out = resize_pos_embed_2d(pos, (7, 7), (8, 4), cls_token=False).reshape(8, 4, 4)
    assert torch.allclose(out, out[:1].expand_as(out), atol=1e-5)


def test_flattened_1d_resize_breaks_the_row_pattern():
    """SPEC 5.9: the old RN50 code resized over the flattened grid; that mixes rows."""
    pos = _row_pattern((7, 7))
    flat = F.interpolate(pos.T[None], size=8 * 4, mode='linear', align_corners=False)[0].T
    grid = flat.reshape(8, 4, 4)
    assert not torch.allclose(grid, grid[:, :1].expand_as(grid), atol=1e-3)


def test_dtype_kept_and_bad_shape_rejected():
    pos = torch.randn(1 + 49, 4, dtype=torch.float64)
    assert resize_pos_embed_2d(pos, (7, 7), (8, 4)).dtype == torch.float64
    with pytest.raises(ConfigError, match='does not fit grid'):
        resize_pos_embed_2d(torch.randn(50, 4), (7, 8), (8, 4))
