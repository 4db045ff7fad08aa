"""CLIPViT on the tiny random-init ViT: shapes, resize, errors, loading, init_weights."""

import pytest
import torch
from open_clip.model import CLIP

from promptsg.errors import CheckpointError, ConfigError
from promptsg.models.backbones import TINY_ARCHS, CLIPViT, build_clip
from promptsg.registry import BACKBONES


@pytest.mark.parametrize(
    'img_size, grid', [(224, (7, 7)), ((256, 128), (8, 4)), ((224, 128), (7, 4))]
)
def test_shapes(img_size, grid):
    backbone = CLIPViT(arch='tiny-vit', img_size=img_size)
    size = (img_size, img_size) if isinstance(img_size, int) else img_size
    assert backbone.img_size == size and backbone.num_tokens == grid[0] * grid[1]
    assert backbone.embed_dim == 64
    global_feat, tokens = backbone(torch.randn(2, 3, *size))
    assert global_feat.shape == (2, 64)
    assert tokens.shape == (2, grid[0] * grid[1], 64)
    assert backbone.visual.positional_embedding.shape == (1 + grid[0] * grid[1], 64)


def test_native_size_matches_open_clip_encode_image():
    torch.manual_seed(0)
    clip = build_clip('tiny-vit').eval()
    torch.manual_seed(0)
    backbone = CLIPViT(arch='tiny-vit', img_size=224).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        global_feat, tokens = backbone(x)
        assert torch.equal(global_feat, clip.encode_image(x))
        # tokens = ln_post(patch tokens) @ proj, read from open_clip's own parts
        visual = clip.visual
        hidden = visual.transformer(visual._embeds(x))
        assert torch.allclose(tokens, visual.ln_post(hidden[:, 1:]) @ visual.proj, atol=1e-6)


def test_positional_embedding_resized_in_2d(tmp_path):
    clip = build_clip('tiny-vit')
    rows = torch.arange(7.0)[:, None, None].expand(7, 7, 64).reshape(49, 64)
    with torch.no_grad():
        clip.visual.positional_embedding[1:] = torch.cos(rows * 0.5)
    torch.save(clip.state_dict(), tmp_path / 'row.pt')
    backbone = CLIPViT(arch='tiny-vit', pretrained=str(tmp_path / 'row.pt'), img_size=(256, 128))
    pos = backbone.visual.positional_embedding.detach()
    assert torch.equal(pos[0], clip.visual.positional_embedding[0].detach())
    grid = pos[1:].reshape(8, 4, 64)
    assert torch.allclose(grid, grid[:, :1].expand_as(grid), atol=1e-5)


@pytest.mark.parametrize('img_size', [(250, 128), (256, 100), 0, (-32, 128), (256,), 'big', 224.0])
def test_bad_img_size(img_size):
    with pytest.raises(ConfigError, match='img_size'):
        CLIPViT(arch='tiny-vit', img_size=img_size)


def test_wrong_input_size():
    backbone = CLIPViT(arch='tiny-vit', img_size=(256, 128), with_text=False)
    with pytest.raises(ConfigError, match=r'expected \(B, 3, 256, 128\)'):
        backbone(torch.randn(2, 3, 224, 224))


def test_wrong_tower_and_unknown_arch():
    with pytest.raises(ConfigError, match='use CLIPResNet'):
        CLIPViT(arch='tiny-rn')
    with pytest.raises(ConfigError, match="unknown CLIP arch 'tiny-vitt'"):
        CLIPViT(arch='tiny-vitt')


def test_missing_pretrained_file():
    with pytest.raises(CheckpointError, match='pretrained file not found'):
        CLIPViT(arch='tiny-vit', pretrained='work_dirs/none/ViT-B-16.pt')


def test_text_parts_kept_once():
    with_text = CLIPViT(arch='tiny-vit', img_size=224)
    without = CLIPViT(arch='tiny-vit', img_size=224, with_text=False)
    clip = CLIP(**TINY_ARCHS['tiny-vit'])
    n_clip = sum(p.numel() for p in clip.parameters()) - clip.logit_scale.numel()
    assert sum(p.numel() for p in with_text.parameters()) == n_clip
    assert sum(p.numel() for p in without.parameters()) == sum(
        p.numel() for p in clip.visual.parameters()
    )
    assert without.text_encoder is None
    assert with_text.text_encoder.width == 64 and with_text.text_encoder.embed_dim == 64
    assert not any(
        k.startswith(('transformer.', 'token_embedding')) for k in with_text.state_dict()
    )


def test_loaded_weights_survive_init_weights(tmp_path):
    source = CLIP(**TINY_ARCHS['tiny-vit'])
    wrapped = {'state_dict': {f'module.{k}': v for k, v in source.state_dict().items()}}
    torch.save(wrapped, tmp_path / 'open_clip_pytorch_model.bin')
    backbone = CLIPViT(
        arch='tiny-vit', pretrained=str(tmp_path / 'open_clip_pytorch_model.bin'), img_size=224
    )
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    backbone.init_weights()
    after = backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(backbone.eval()(x)[0], source.eval().encode_image(x))


def test_build_from_registry():
    backbone = BACKBONES.build(dict(type='CLIPViT', arch='tiny-vit', img_size=(256, 128)))
    assert isinstance(backbone, CLIPViT) and backbone.num_tokens == 32
    assert 'CLIPViT' in BACKBONES.names() and 'CLIPResNet' in BACKBONES.names()
