"""CLIP-ReID's ViT options: SIE acts only through the camera (view) id and is a no-op at
coefficient 0; OLP's token grid and positional-embedding resize are right for 256 × 128."""

import pytest
import torch

from promptsg.errors import ConfigError, DataError
from promptsg.models.backbones import CLIPViT
from promptsg.models.backbones.pos_embed import resize_pos_embed_2d


def vit(**kwargs) -> CLIPViT:
    torch.manual_seed(0)
    kwargs.setdefault('img_size', (64, 32))
    return CLIPViT(arch='tiny-vit', pretrained=None, with_text=False, **kwargs).eval()


@torch.no_grad()
def test_olp_grid_and_pos_embed_for_vit_b16_at_256x128():
    backbone = CLIPViT(arch='ViT-B-16', img_size=(256, 128), patch_stride=12, with_text=False)
    assert backbone.grid_size == (21, 10)  # (256 - 16) // 12 + 1, (128 - 16) // 12 + 1
    assert backbone.num_tokens == 210
    assert backbone.visual.conv1.stride == (12, 12)
    assert backbone.visual.positional_embedding.shape == (1 + 210, 768)
    global_feat, tokens = backbone.eval()(torch.randn(1, 3, 256, 128))
    assert global_feat.shape == (1, 512) and tokens.shape == (1, 210, 512)


@torch.no_grad()
def test_olp_pos_embed_is_the_2d_resize_of_the_source_grid():
    plain = vit(img_size=(224, 224))  # tiny-vit: patch 32, source grid 7 x 7
    source = plain.visual.positional_embedding.detach().clone()
    torch.manual_seed(0)
    olp = CLIPViT(
        arch='tiny-vit', pretrained=None, with_text=False, img_size=(256, 128), patch_stride=12
    )
    assert olp.grid_size == (19, 9)  # (256 - 32) // 12 + 1, (128 - 32) // 12 + 1
    expected = resize_pos_embed_2d(source, (7, 7), (19, 9))
    torch.testing.assert_close(olp.visual.positional_embedding, expected)
    assert olp(torch.randn(2, 3, 256, 128))[1].shape == (2, 19 * 9, 64)


def test_olp_bad_stride():
    with pytest.raises(ConfigError, match='patch_stride'):
        vit(patch_stride=48)
    with pytest.raises(ConfigError, match='patch_stride'):
        vit(patch_stride=0)


@torch.no_grad()
def test_sie_only_through_the_camera_id():
    plain, sie = vit(), vit(sie_cameras=3, sie_coef=1.0)
    sie.load_state_dict({**plain.state_dict(), 'sie_embed': sie.sie_embed}, strict=True)
    x = torch.randn(1, 3, 64, 32).expand(3, -1, -1, -1)  # one image, three times
    out = sie(x, camid=torch.tensor([0, 1, 0]))[0]
    assert torch.equal(out[0], out[2])  # same image, same camera: same feature
    assert not torch.allclose(out[0], out[1])  # same image, other camera: other feature
    torch.testing.assert_close(sie(x)[0], plain(x)[0])  # no camera id: the plain encoder


@torch.no_grad()
def test_sie_with_coefficient_zero_is_a_no_op():
    plain, sie = vit(), vit(sie_cameras=2, sie_views=4, sie_coef=0.0)
    sie.load_state_dict({**plain.state_dict(), 'sie_embed': sie.sie_embed}, strict=True)
    x = torch.randn(2, 3, 64, 32)
    ids = dict(camid=torch.tensor([0, 1]), viewid=torch.tensor([3, 0]))
    assert sie.sie_embed.shape == (8, 64)
    assert torch.equal(sie(x, **ids)[0], plain(x)[0])


def test_sie_view_index_and_bad_ids():
    sie = vit(sie_cameras=2, sie_views=3)
    offset = sie.side_embedding(torch.tensor([1]), torch.tensor([2]))
    torch.testing.assert_close(offset, sie.sie_embed[[5]])  # camid * views + viewid
    with pytest.raises(DataError, match='camid'):
        sie(torch.randn(1, 3, 64, 32), camid=torch.tensor([2]))
    with pytest.raises(ConfigError, match='sie_cameras'):
        vit(sie_cameras=-1)


def test_sie_gets_gradient_and_camid_reaches_it_through_clip_reid():
    from mmengine.registry import DefaultScope

    from promptsg.registry import MODELS

    with DefaultScope.overwrite_default_scope('promptsg'):
        model = MODELS.build(
            dict(
                type='CLIPReID',
                num_classes=2,
                backbone=dict(
                    type='CLIPViT',
                    arch='tiny-vit',
                    img_size=(64, 32),
                    pretrained=None,
                    sie_cameras=2,
                ),
                head=dict(type='LinearClassifier'),
                losses=dict(ce=dict(type='CrossEntropyLoss')),
                stage='image',
            )
        )
    model.train()
    x = torch.randn(4, 3, 64, 32)
    samples = dict(pid=torch.tensor([0, 0, 1, 1]), camid=torch.tensor([0, 1, 0, 1]))
    model.loss(x, samples)['loss_ce'].backward()
    grad = model.backbone.sie_embed.grad
    assert grad is not None and grad.abs().sum(1).gt(0).all()  # both cameras were used


@torch.no_grad()
def test_every_model_passes_the_camera_id_to_sie():
    from mmengine.registry import DefaultScope

    from promptsg.registry import MODELS

    backbone = dict(
        type='CLIPViT', arch='tiny-vit', img_size=(64, 32), pretrained=None, sie_cameras=2
    )
    x = torch.randn(1, 3, 64, 32).expand(2, -1, -1, -1)
    samples = dict(camid=torch.tensor([0, 1]))
    for cfg in (
        dict(type='ReIDBaseline', losses=dict(ce=dict(type='TripletLoss'))),
        dict(type='PromptSG', losses=dict(ce=dict(type='TripletLoss'))),
    ):
        with DefaultScope.overwrite_default_scope('promptsg'):
            model = MODELS.build(dict(cfg, num_classes=2, backbone=backbone)).eval()
        feat = model.embed(x, samples)
        assert not torch.allclose(feat[0], feat[1]), cfg['type']


def test_sie_over_cameras_and_views_needs_the_view_id():
    """camid alone would pick row camid (another camera's view 0..V-1 block): refused."""
    sie = vit(sie_cameras=2, sie_views=3)
    with pytest.raises(DataError, match='needs a viewid with each camid'):
        sie(torch.randn(1, 3, 64, 32), camid=torch.tensor([1]))


@torch.no_grad()
def test_a_model_with_camera_sie_refuses_a_batch_without_camid():
    from mmengine.registry import DefaultScope

    from promptsg.registry import MODELS

    backbone = dict(
        type='CLIPViT', arch='tiny-vit', img_size=(64, 32), pretrained=None, sie_cameras=2
    )
    with DefaultScope.overwrite_default_scope('promptsg'):
        model = MODELS.build(
            dict(
                type='ReIDBaseline',
                num_classes=2,
                backbone=backbone,
                losses=dict(tri=dict(type='TripletLoss')),
            )
        ).eval()
    assert model.sie_cameras == 2
    x = torch.randn(2, 3, 64, 32)
    with pytest.raises(DataError, match=r'SIE over 2 cameras.*carry no camid'):
        model.embed(x, {'aspect': ['', '']})
    torch.testing.assert_close(model.embed(x), model.embed(x, None))  # no samples: plain encoder
