"""unfreeze_blocks: after an SGD step frozen weights/buffers are bit-identical, the rest moved."""

import pytest
import torch
from torch import nn

from promptsg.errors import ConfigError
from promptsg.models.backbones import CLIPResNet, CLIPViT


def _sgd_step(backbone: nn.Module) -> tuple[dict, dict]:
    backbone.train()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    trainable = [p for p in backbone.parameters() if p.requires_grad]
    global_feat, tokens = backbone(torch.randn(2, 3, *backbone.img_size))
    if trainable:
        optimizer = torch.optim.SGD(trainable, lr=0.1)
        (global_feat.pow(2).sum() + tokens.pow(2).sum()).backward()
        optimizer.step()
    return before, backbone.state_dict()


def _check(backbone: nn.Module, trained_prefixes: tuple[str, ...]):
    before, after = _sgd_step(backbone)
    for key in before:
        changed = not torch.equal(before[key], after[key])
        assert changed == key.startswith(trained_prefixes), key


def _trainable_names(backbone: nn.Module) -> set[str]:
    return {name for name, p in backbone.named_parameters() if p.requires_grad}


def test_vit_last_block_and_head():
    backbone = CLIPViT(arch='tiny-vit', img_size=(256, 128), unfreeze_blocks=1)
    trained = ('visual.transformer.resblocks.1.', 'visual.ln_post.', 'visual.proj')
    assert all(name.startswith(trained) for name in _trainable_names(backbone))
    _check(backbone, trained)
    assert not backbone.text_encoder.training


def test_vit_fully_frozen_and_fully_trained():
    frozen = CLIPViT(arch='tiny-vit', img_size=(224, 128), unfreeze_blocks=0)
    assert _trainable_names(frozen) == set()
    _check(frozen, ())
    assert not frozen.visual.training

    trained = CLIPViT(arch='tiny-vit', img_size=(224, 128), unfreeze_blocks=-1)
    assert _trainable_names(trained) == {
        f'visual.{name}' for name, _ in trained.visual.named_parameters()
    }
    _check(trained, ('visual.',))


def _resnet(unfreeze_blocks: int) -> CLIPResNet:
    backbone = CLIPResNet(arch='tiny-rn', img_size=(256, 128), unfreeze_blocks=unfreeze_blocks)
    # open_clip zero-initialises each block's last BN weight, which zeroes conv3's gradient.
    for module in backbone.visual.modules():
        if isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
    return backbone


def test_resnet_last_two_stages_and_attnpool_batchnorm_frozen():
    backbone = _resnet(2)
    trained = ('visual.layer3.', 'visual.layer4.', 'visual.attnpool.')
    assert all(name.startswith(trained) for name in _trainable_names(backbone))
    backbone.train()
    assert not backbone.visual.bn1.training and not backbone.visual.layer2[0].bn1.training
    assert backbone.visual.layer3[0].bn1.training and backbone.training
    _check(backbone, trained)  # frozen BN running stats included


def test_resnet_all_stages_and_frozen():
    _check(_resnet(4), ('visual.layer', 'visual.attnpool.'))
    frozen = _resnet(0)
    assert _trainable_names(frozen) == set()
    _check(frozen, ())


@pytest.mark.parametrize(
    'cls, arch, value',
    [
        (CLIPViT, 'tiny-vit', 3),
        (CLIPViT, 'tiny-vit', -2),
        (CLIPResNet, 'tiny-rn', 5),
        (CLIPResNet, 'tiny-rn', True),
    ],
)
def test_out_of_range(cls, arch, value):
    with pytest.raises(ConfigError, match='unfreeze_blocks'):
        cls(arch=arch, unfreeze_blocks=value)
