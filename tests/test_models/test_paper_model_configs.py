"""The paper's person-ReID model bases build and train one step with a tiny backbone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from promptsg.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]
BASES = ROOT / 'configs' / '_base_' / 'models'
TRIPLETS = {'loss_triplet', 'loss_tri_img', 'loss_tri_img_1', 'loss_tri_img_2'}


@pytest.fixture
def tiny_archs(deep_tiny_archs):
    return {
        'promptsg_vit_b16_person.py': deep_tiny_archs['CLIPViT'],
        'promptsg_rn50_person.py': deep_tiny_archs['CLIPResNet'],
    }


@pytest.mark.parametrize('name', ['promptsg_vit_b16_person.py', 'promptsg_rn50_person.py'])
def test_paper_base_puts_the_triplet_on_mim_and_three_visual_states(name, tiny_archs):
    cfg = Config.fromfile(BASES / name).model.to_dict()
    assert cfg['backbone']['img_size'] == (256, 128)
    if 'rn50' in name:
        assert cfg['backbone']['last_stride'] == 1
    img_size = (64, 32) if 'vit' in name else (32, 16)  # RN at last_stride=1: stride 16
    cfg['backbone'].update(arch=tiny_archs[name], pretrained=None, img_size=img_size)
    cfg.update(num_classes=4, interaction={**cfg['interaction'], 'num_heads': 4})
    cfg['inversion']['hidden_dim'] = 32
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('promptsg'):
        model = MODELS.build(cfg).train()
    losses = model.loss(torch.randn(8, 3, *img_size), {'pid': torch.arange(8) // 2})
    assert TRIPLETS | {'loss_ce', 'loss_supcon'} <= set(losses)
    assert all(torch.isfinite(v) for k, v in losses.items() if 'loss' in k)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
