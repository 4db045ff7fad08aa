"""The models and batches the benchmarks run on, built from the quick-start config.

Every model is the quick-start PromptSG (``configs/quickstart/synthetic_promptsg.py``) with its
backbone swapped for the arch asked for (random init, ``pretrained=None``); real archs get the
paper's sizes (inversion hidden 512, MIM 8 heads, 1 cross + 2 self layers). The baseline is the
foundation's ``ReIDBaseline``: the same backbone, BNNeck and classifier, CE + triplet.
Batches are P×K synthetic identities (K = 4) drawn by ``SyntheticReID``.
"""

from __future__ import annotations

import copy

import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope
from torch import nn

from bench.harness import REPO
from promptsg.datasets.samplers import PKSampler
from promptsg.datasets.synthetic import SyntheticReID
from promptsg.errors import ConfigError
from promptsg.models.backbones.clip_builder import TINY_ARCHS, clip_config
from promptsg.registry import MODELS

QUICKSTART = REPO / 'configs' / 'quickstart' / 'synthetic_promptsg.py'
KINDS = ('promptsg', 'baseline')
#: Classifier size of the benchmark models: Market-1501's training identities.
NUM_CLASSES = 751
NUM_INSTANCES = 4


def quickstart_config() -> Config:
    """The quick-start config, read afresh."""
    return Config.fromfile(str(QUICKSTART))


def backbone_cfg(arch: str, img_size: tuple[int, int], with_text: bool = True) -> dict:
    """``CLIPResNet`` or ``CLIPViT`` config for ``arch`` (random init)."""
    layers = clip_config(arch)['vision_cfg'].get('layers')
    kind = 'CLIPResNet' if isinstance(layers, (tuple, list)) else 'CLIPViT'
    return dict(
        type=kind, arch=arch, img_size=tuple(img_size), pretrained=None, with_text=with_text
    )


def model_cfg(
    kind: str, arch: str, img_size: tuple[int, int], num_classes: int = NUM_CLASSES
) -> dict:
    """Model config of ``kind`` ('promptsg' or 'baseline') on ``arch`` at ``img_size`` (H, W)."""
    if kind not in KINDS:
        raise ConfigError(f"bench model kind '{kind}' is not one of {list(KINDS)}")
    cfg = copy.deepcopy(quickstart_config().model.to_dict())
    cfg['num_classes'] = num_classes
    cfg['backbone'] = backbone_cfg(arch, img_size, with_text=kind == 'promptsg')
    if arch not in TINY_ARCHS:
        cfg['inversion']['hidden_dim'] = 512
        cfg['interaction'].update(num_heads=8, num_cross_layers=1, num_self_layers=2)
    if kind == 'baseline':
        losses = {name: cfg['losses'][name] for name in ('ce', 'triplet')}
        cfg = dict(
            type='ReIDBaseline',
            num_classes=num_classes,
            backbone=cfg['backbone'],
            neck=cfg['neck'],
            head=cfg['head'],
            losses=losses,
        )
    return cfg


def build_model(
    kind: str,
    arch: str,
    img_size: tuple[int, int],
    device: torch.device | str = 'cpu',
    num_classes: int = NUM_CLASSES,
) -> nn.Module:
    """Build :func:`model_cfg` (under the ``promptsg`` scope) on ``device``, in train mode."""
    init_default_scope('promptsg')
    model = MODELS.build(model_cfg(kind, arch, img_size, num_classes))
    return model.to(device).train()


def synthetic_batch(batch_size: int, img_size: tuple[int, int], seed: int = 0) -> dict:
    """One P×K batch (K = 4) of synthetic identities, collated as the data loaders do:
    ``{'inputs': (B, 3, H, W) uint8, 'data_samples': {'pid': (B,), 'camid': (B,), ...}}``."""
    if batch_size < NUM_INSTANCES or batch_size % NUM_INSTANCES:
        raise ConfigError(
            f'batch size {batch_size} must be a positive multiple of K={NUM_INSTANCES}'
        )
    dataset = SyntheticReID(
        split='train',
        num_train_ids=batch_size // NUM_INSTANCES,
        images_per_id=NUM_INSTANCES,
        img_size=tuple(img_size),
        seed=seed,
        pipeline=[dict(type='LoadImage'), dict(type='PackReIDInputs')],
    )
    sampler = PKSampler(dataset, batch_size, num_instances=NUM_INSTANCES, seed=seed)
    return default_collate([dataset[i] for i in list(iter(sampler))[:batch_size]])


def case_name(arch: str, batch_size: int, img_size: tuple[int, int], amp: bool = False) -> str:
    """E.g. ``'tiny-vit b32 256x128'`` (``' bf16'`` appended under AMP)."""
    return f'{arch} b{batch_size} {img_size[0]}x{img_size[1]}' + (' bf16' if amp else '')
