"""The paper's person-ReID model bases build and train one step with a tiny backbone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from promptsg.models.backbones import TINY_ARCHS
from promptsg.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]
BASES = ROOT / 'configs' / '_base_' / 'models'
TRIPLETS = {'loss_triplet', 'loss_tri_img', 'loss_tri_img_1', 'loss_tri_img_2'}


@pytest.fixture
def tiny_archs(monkeypatch):
    """Tiny archs with three last blocks, as ViT-B/16 (12 blocks) and RN50 (layer4: 3)."""
    vit = {**TINY_ARCHS['tiny-vit']}
    vit['vision_cfg'] = {**vit['vision_cfg'], 'layers': 3}
    rn = {**TINY_ARCHS['tiny-rn']}
    rn['vision_cfg'] = {**rn['vision_cfg'], 'layers': (1, 1, 1, 3)}
    monkeypatch.setitem(TINY_ARCHS, 'tiny-vit-3', vit)
    monkeypatch.setitem(TINY_ARCHS, 'tiny-rn-3', rn)
    return {'promptsg_paper_vit_b16.py': 'tiny-vit-3', 'promptsg_paper_rn50.py': 'tiny-rn-3'}


@pytest.mark.parametrize('name', ['promptsg_paper_vit_b16.py', 'promptsg_paper_rn50.py'])
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
