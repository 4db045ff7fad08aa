"""CLIPResNet on the tiny random-init ModifiedResNet: shapes, 2-D resize, dense tokens, errors."""

import pytest
import torch
from open_clip.model import CLIP

from promptsg.errors import ConfigError
from promptsg.models.backbones import TINY_ARCHS, CLIPResNet, build_clip
from promptsg.models.backbones.pos_embed import resize_pos_embed_2d
from promptsg.registry import BACKBONES


@pytest.mark.parametrize(
    'img_size, grid', [(224, (7, 7)), ((256, 128), (8, 4)), ((224, 128), (7, 4))]
)
def test_shapes(img_size, grid):
    backbone = BACKBONES.build(dict(type='CLIPResNet', arch='tiny-rn', img_size=img_size))
    size = (img_size, img_size) if isinstance(img_size, int) else img_size
    assert backbone.num_tokens == grid[0] * grid[1] and backbone.embed_dim == 64
    global_feat, tokens = backbone(torch.randn(2, 3, *size))
    assert global_feat.shape == (2, 64)
    assert tokens.shape == (2, grid[0] * grid[1], 64)
    assert backbone.visual.attnpool.positional_embedding.shape == (1 + grid[0] * grid[1], 512)


def test_native_size_matches_open_clip_encode_image():
    """At stride 32 and the native size the pos-embed resize is the identity and the written-out
    attention pool (value projection computed once) equals open_clip's."""
    torch.manual_seed(0)
    clip = build_clip('tiny-rn').eval()
    torch.manual_seed(0)
    backbone = CLIPResNet(arch='tiny-rn', img_size=224).eval()
    assert torch.equal(
        backbone.visual.attnpool.positional_embedding, clip.visual.attnpool.positional_embedding
    )
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(backbone(x)[0], clip.encode_image(x), rtol=1e-5, atol=1e-6)


def test_attention_pool_projects_values_once():
    """The pool's FLOPs fit one q (mean token only), k and v over 1 + N tokens, the attention
    and c_proj for the global and the N tokens: no second value projection."""
    from torch.utils.flop_counter import FlopCounterMode

    backbone = CLIPResNet(arch='tiny-rn', img_size=(64, 32), with_text=False).eval()
    b, c, n, d = 2, 512, 2, 64
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        global_feat, tokens = backbone.pool(torch.randn(b, c, 2, 1))
    length = 1 + n
    budget = 2 * b * c * c + 2 * 2 * b * length * c * c + 2 * 2 * b * length * c
    budget += 2 * b * c * d + 2 * b * n * c * d
    assert counter.get_total_flops() <= budget
    assert global_feat.shape == (b, d) and tokens.shape == (b, n, d)


def test_last_stride_1_doubles_the_grid_and_resizes_the_pool_in_2d(tmp_path):
    clip = CLIP(**TINY_ARCHS['tiny-rn'])
    rows = torch.arange(7.0)[:, None, None].expand(7, 7, 512).reshape(49, 512)
    with torch.no_grad():
        clip.visual.attnpool.positional_embedding[1:] = torch.sin(rows * 0.8)
    torch.save(clip.state_dict(), tmp_path / 'rn.pt')
    weights = str(tmp_path / 'rn.pt')
    backbone = CLIPResNet(arch='tiny-rn', pretrained=weights, img_size=(256, 128), last_stride=1)
    assert backbone.stride == (16, 16) and backbone.grid_size == (16, 8)
    assert backbone.num_tokens == 128
    pos = backbone.visual.attnpool.positional_embedding.detach()
    expected = resize_pos_embed_2d(
        clip.visual.attnpool.positional_embedding.detach(), (7, 7), (16, 8)
    )
    torch.testing.assert_close(pos, expected)
    grid = pos[1:].reshape(16, 8, 512)
    assert torch.allclose(grid, grid[:, :1].expand_as(grid), atol=1e-5)  # rows stay rows
    global_feat, tokens = backbone.eval()(torch.randn(2, 3, 256, 128))
    assert global_feat.shape == (2, 64) and tokens.shape == (2, 128, 64)
    # same weights as the stride-32 model: last_stride only removes layer4's pooling
    stride32 = CLIPResNet(arch='tiny-rn', pretrained=weights, img_size=(256, 128))
    assert set(stride32.state_dict()) == set(backbone.state_dict())
    assert stride32.visual.layer4[0].downsample[1].weight.shape == (
        backbone.visual.layer4[0].downsample[1].weight.shape
    )


@pytest.mark.parametrize('last_stride', [0, 3, True])
def test_bad_last_stride(last_stride):
    with pytest.raises(ConfigError, match=r'last_stride must be one of \[1, 2\]'):
        CLIPResNet(arch='tiny-rn', last_stride=last_stride)


def test_last_stride_1_needs_img_size_in_multiples_of_16():
    CLIPResNet(arch='tiny-rn', img_size=(240, 112), last_stride=1, with_text=False)
    with pytest.raises(ConfigError, match='multiple of 16'):
        CLIPResNet(arch='tiny-rn', img_size=(248, 112), last_stride=1, with_text=False)


def test_attnpool_positional_embedding_resized_in_2d(tmp_path):
    """SPEC 5.9: a row-only pattern must stay row-only (a flattened 1-D resize breaks it)."""
    clip = CLIP(**TINY_ARCHS['tiny-rn'])
    rows = torch.arange(7.0)[:, None, None].expand(7, 7, 512).reshape(49, 512)
    with torch.no_grad():
        clip.visual.attnpool.positional_embedding[1:] = torch.sin(rows * 0.8)
    torch.save(clip.state_dict(), tmp_path / 'rn.pt')
    backbone = CLIPResNet(arch='tiny-rn', pretrained=str(tmp_path / 'rn.pt'), img_size=(256, 128))
    grid = backbone.visual.attnpool.positional_embedding.detach()[1:].reshape(8, 4, 512)
    assert torch.allclose(grid, grid[:, :1].expand_as(grid), atol=1e-5)
    assert not torch.allclose(grid[0], grid[-1], atol=1e-2)


def test_tokens_share_the_global_feature_space():
    """A spatially uniform map without positional terms: every token equals the global feature."""
    backbone = CLIPResNet(arch='tiny-rn', img_size=(256, 128), with_text=False).eval()
    with torch.no_grad():
        backbone.visual.attnpool.positional_embedding.zero_()
        feature_map = torch.randn(2, 512, 1, 1).expand(2, 512, 8, 4).contiguous()
        global_feat, tokens = backbone.pool(feature_map)
    assert tokens.shape == (2, 32, 64)
    assert torch.allclose(tokens, global_feat[:, None].expand_as(tokens), atol=1e-5)


@pytest.mark.parametrize('img_size', [(250, 128), (256, 112), -224, [256, 128, 3]])
def test_bad_img_size(img_size):
    with pytest.raises(ConfigError, match=r'img_size'):
        CLIPResNet(arch='tiny-rn', img_size=img_size)


def test_wrong_input_size_and_wrong_tower():
    backbone = CLIPResNet(arch='tiny-rn', img_size=(256, 128), with_text=False)
    with pytest.raises(ConfigError, match='does not match img_size'):
        backbone(torch.randn(2, 3, 128, 256))
    with pytest.raises(ConfigError, match='use CLIPViT'):
        CLIPResNet(arch='tiny-vit')
