"""Intermediate visual states: the backbones expose them and a loss can take them by name."""

from __future__ import annotations

import pytest
import torch
from mmengine.registry import DefaultScope

from promptsg.errors import ConfigError
from promptsg.models.backbones import TINY_ARCHS, CLIPResNet, CLIPViT
from promptsg.registry import MODELS


@pytest.fixture
def deep_rn(monkeypatch):
    """A tiny ModifiedResNet whose layer4 has 3 blocks, like RN50's."""
    cfg = {**TINY_ARCHS['tiny-rn']}
    cfg['vision_cfg'] = {**cfg['vision_cfg'], 'layers': (1, 1, 1, 3)}
    monkeypatch.setitem(TINY_ARCHS, 'tiny-rn-deep', cfg)
    return 'tiny-rn-deep'


def _wake_residuals(backbone: CLIPResNet) -> None:
    """open_clip zero-inits each bottleneck's last BN, making blocks 2..n identities at init."""
    with torch.no_grad():
        for block in backbone.visual.layer4:
            block.bn3.weight.normal_()


def test_vit_states_are_the_earlier_cls_tokens_through_ln_post_and_proj():
    torch.manual_seed(0)
    backbone = CLIPViT(arch='tiny-vit', img_size=(64, 32), with_text=False).eval()
    assert backbone.num_states == 1
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        global_feat, tokens, states = backbone.forward_states(x, [1])
        ref_global, ref_tokens = backbone(x)
        visual = backbone.visual
        h = visual.transformer.resblocks[0](visual._embeds(x))
        expected = visual.ln_post(h[:, 0]) @ visual.proj
    torch.testing.assert_close(global_feat, ref_global)
    torch.testing.assert_close(tokens, ref_tokens)
    torch.testing.assert_close(states[1], expected)
    assert not torch.allclose(states[1], global_feat)


def test_resnet_states_pool_layer4_blocks_before_the_last(deep_rn):
    torch.manual_seed(0)
    backbone = CLIPResNet(arch=deep_rn, img_size=(64, 32), with_text=False).eval()
    _wake_residuals(backbone)
    assert backbone.num_states == 2
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        global_feat, tokens, states = backbone.forward_states(x, [1, 2])
        ref_global, _ = backbone(x)
        visual = backbone.visual
        fmap = visual.layer3(visual.layer2(visual.layer1(visual.stem(x))))
        after_first = visual.layer4[0](fmap)
    torch.testing.assert_close(global_feat, ref_global)
    torch.testing.assert_close(states[2], backbone.pool(after_first)[0])
    assert states[1].shape == (2, 64) and not torch.allclose(states[1], states[2])


def _model(arch: str, losses: dict, backbone_type: str = 'CLIPViT'):
    cfg = dict(
        type='PromptSG',
        num_classes=4,
        backbone=dict(type=backbone_type, arch=arch, img_size=(64, 32)),
        inversion=dict(type='InversionNetwork', hidden_dim=32),
        interaction=dict(type='MultimodalInteraction', num_heads=4, num_self_layers=0),
        head=dict(type='LinearClassifier'),
        losses=losses,
    )
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('promptsg'):
        return MODELS.build(cfg)


@pytest.mark.parametrize('backbone_type', ['CLIPViT', 'CLIPResNet'])
def test_a_triplet_per_visual_state_trains_each_state(backbone_type, deep_rn):
    arch = 'tiny-vit' if backbone_type == 'CLIPViT' else deep_rn
    losses = dict(
        ce=dict(type='CrossEntropyLoss'),
        triplet=dict(type='TripletLoss'),
        tri_img=dict(type='TripletLoss', inputs=('img_feat', 'pid')),
        tri_img_1=dict(type='TripletLoss', inputs=('img_state_1', 'pid')),
    )
    model = _model(arch, losses, backbone_type).train()
    if backbone_type == 'CLIPResNet':
        _wake_residuals(model.backbone)
    inputs = torch.randn(8, 3, 64, 32)
    out = model.loss(inputs, {'pid': torch.arange(8) // 2})
    assert {'loss_triplet', 'loss_tri_img', 'loss_tri_img_1'} <= set(out)
    model.zero_grad()
    out['loss_tri_img_1'].backward()
    if backbone_type == 'CLIPViT':
        first, last = model.backbone.visual.transformer.resblocks
    else:
        first, last = model.backbone.visual.layer4[1], model.backbone.visual.layer4[2]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in first.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in last.parameters())
    model.eval()
    with torch.no_grad():
        assert model.extract_feat(inputs).keys().isdisjoint({'img_state_1'})


def test_a_state_the_backbone_lacks_is_a_config_error():
    losses = dict(tri=dict(type='TripletLoss', inputs=('img_state_2', 'pid')))
    with pytest.raises(ConfigError, match=r"no visual state\(s\) \['img_state_2'\]; it offers"):
        _model('tiny-vit', losses)


def test_vit_states_see_the_sie_offset_like_forward():
    torch.manual_seed(0)
    backbone = CLIPViT(
        arch='tiny-vit', img_size=(64, 32), with_text=False, sie_cameras=2, sie_coef=1.0
    ).eval()
    with torch.no_grad():
        backbone.sie_embed.normal_()
        x, camid = torch.randn(2, 3, 64, 32), torch.tensor([0, 1])
        global_feat, tokens, _ = backbone.forward_states(x, [1], camid=camid)
        ref_global, ref_tokens = backbone(x, camid=camid)
        plain_global, _ = backbone(x)
    torch.testing.assert_close(global_feat, ref_global)
    torch.testing.assert_close(tokens, ref_tokens)
    assert not torch.allclose(global_feat, plain_global)
