"""``forward_branches``: the three image features CLIP-ReID's two-branch heads read, each equal
to the same feature reached another way."""

from __future__ import annotations

import pytest
import torch
from mmengine.registry import DefaultScope

from promptsg.registry import BACKBONES

IMG_SIZE = (64, 32)


def build(**cfg):
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('promptsg'):
        return BACKBONES.build(dict(img_size=IMG_SIZE, pretrained=None, **cfg)).eval()


@pytest.mark.parametrize(
    'options',
    [dict(), dict(sie_cameras=3, sie_coef=1.0, patch_stride=12)],
    ids=['vit', 'vit-sie-olp'],
)
def test_vit_branches_are_the_global_cls_before_proj_and_the_raw_inner_cls(options):
    vit = build(type='CLIPViT', arch='tiny-vit', **options)
    x = torch.randn(3, 3, *IMG_SIZE)
    side = dict(camid=torch.tensor([0, 1, 2])) if options else {}
    with torch.no_grad():
        out = vit.forward_branches(x, **side)
        global_feat, _ = vit(x, **side)
        _, _, states = vit.forward_states(x, [1], **side)
    width = vit.visual.proj.shape[0]
    assert vit.branch_dims == {'pre_proj': width, 'inner': width}
    assert out['pre_proj'].shape == out['inner'].shape == (3, width)
    torch.testing.assert_close(out['global'], global_feat, rtol=0, atol=1e-6)
    torch.testing.assert_close(out['pre_proj'] @ vit.visual.proj, global_feat, rtol=0, atol=1e-5)
    # forward_states maps the same inner CLS through ln_post and proj
    inner_joint = vit.visual.ln_post(out['inner']) @ vit.visual.proj
    torch.testing.assert_close(inner_joint, states[1], rtol=0, atol=1e-5)
    assert not torch.allclose(out['inner'], out['pre_proj'])


def test_resnet_branches_are_attention_pool_layer4_and_layer3_means():
    rn = build(type='CLIPResNet', arch='tiny-rn', last_stride=1)
    x = torch.randn(2, 3, *IMG_SIZE)
    with torch.no_grad():
        out = rn.forward_branches(x)
        global_feat, _ = rn(x)
        fmap = rn.feature_map(x)
        visual = rn.visual
        x3 = visual.layer3(visual.layer2(visual.layer1(visual.stem(x))))
    assert rn.branch_dims == {'pre_proj': fmap.shape[1], 'inner': x3.shape[1]}
    torch.testing.assert_close(out['global'], global_feat, rtol=0, atol=1e-6)
    torch.testing.assert_close(out['pre_proj'], fmap.mean(dim=(2, 3)), rtol=0, atol=1e-6)
    torch.testing.assert_close(out['inner'], x3.mean(dim=(2, 3)), rtol=0, atol=1e-6)
