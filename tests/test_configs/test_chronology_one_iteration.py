"""Every stage-3 version builds and trains one iteration.

The backbone is swapped for a tiny random CLIP and the data for a few synthetic identities
through ``--cfg-options``-style overrides (inputs scaled down, the version's aspect ratio kept);
the model, the optimiser wrapper (``ReIDOptimWrapperConstructor``) and the P x K data loader are
built from the version's config as the Runner builds them, and one ``train_step`` runs. The
Runner itself drives the versions in ``tests/test_tools/test_chronology.py``. 11k Hands is
checked against the real mini data set when it is present.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from promptsg.chronology.moves import loss_term
from promptsg.chronology.run import version_config
from promptsg.chronology.versions import find_versions
from promptsg.engine.config import apply_cfg_options, fill_num_classes, path_options
from promptsg.registry import DATASETS, HOOKS, MODELS

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / 'configs'
TINY = {'vit_b16': 'tiny-vit', 'rn50': 'tiny-rn'}
VERSIONS = {b: {v.name: v for v in find_versions(CONFIGS / b)} for b in TINY}
LOADERS = {'train_dataloader': 'train', 'val_dataloader': 'val', 'test_dataloader': 'test'}
NUM_IDS = 4  # 4 ids x 4 images = one P x K batch of 16 (the configs' 32 halved for speed)
BATCH = 16


def small(size) -> tuple[int, int]:
    """224 -> 64, 128 -> 32: a multiple of the tiny archs' stride 32, aspect kept."""
    return tuple(max(32, round(d * 64 / 224 / 32) * 32) for d in size)


def tiny_options(cfg: Config, arch: str) -> dict:
    """Tiny backbone, synthetic data through each version's own (scaled) pipelines."""
    size = small(cfg.model.backbone.img_size)
    synthetic = dict(
        type='SyntheticReID',
        num_train_ids=NUM_IDS,
        num_test_ids=4,
        images_per_id=4,
        img_size=(32, 16),
        seed=0,
    )
    options = {
        'model.backbone.arch': arch,
        'model.backbone.pretrained': None,
        'model.backbone.img_size': size,
        'train_dataloader.batch_size': BATCH,
    }
    for loader, split in LOADERS.items():
        pipeline = [
            {**t, 'size': size} if 'size' in t else dict(t) for t in cfg[loader].dataset.pipeline
        ]
        options[f'{loader}.dataset'] = dict(
            _delete_=True, **synthetic, split=split, pipeline=pipeline
        )
        options[f'{loader}.num_workers'] = 0
    return options


@pytest.fixture(scope='module', autouse=True)
def promptsg_scope():
    with DefaultScope.overwrite_default_scope('promptsg'):
        yield


@pytest.mark.parametrize('backbone,version', [(b, f'v{n}') for b in TINY for n in range(1, 12)])
def test_version_trains_one_iteration(backbone, version):
    entry = VERSIONS[backbone][version]
    spec = Config.fromfile(str(entry.path))
    cfg = version_config(entry, options=tiny_options(spec, TINY[backbone]))
    assert cfg.model.num_classes == NUM_IDS  # set from the training set

    model = MODELS.build(cfg.model)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lrs = {g['name']: g['lr'] for g in optim_wrapper.param_groups if 'name' in g}
    assert lrs['clip_visual'] == spec.optim_wrapper.paramwise_cfg.lr_clip_visual
    assert lrs['modules'] == spec.optim_wrapper.paramwise_cfg.lr_modules
    assert optim_wrapper.clip_grad_kwargs['max_norm'] == spec.optim_wrapper.clip_grad.max_norm
    HOOKS.build(cfg.default_hooks.early_stopping.to_dict())

    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    batch = next(iter(loader))
    assert batch['inputs'].shape == (BATCH, 3, *small(spec.model.backbone.img_size))
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    text = {n: p.detach().clone() for n, p in model.backbone.text_encoder.named_parameters()}
    model.train()
    log_vars = model.train_step(batch, optim_wrapper)

    assert math.isfinite(float(log_vars['loss']))
    expected_terms = {loss_term(c) for c in spec.model.losses.values()}
    assert expected_terms <= set(log_vars)
    moved = {
        n
        for n, p in model.named_parameters()
        if n in trainable and not torch.equal(p, trainable[n])
    }
    assert any(n.startswith('backbone.') for n in moved)  # the image encoder trains
    assert any(n.startswith(('inversion.', 'interaction.')) for n in moved)  # so do the new modules
    for name, param in model.backbone.text_encoder.named_parameters():
        assert torch.equal(param, text[name]), f'text encoder changed: {name}'


def test_hands_datasets_build_from_v1_on_real_mini_data(shared_data):
    root = shared_data / '11k_hands_mini'
    if not root.is_dir():
        pytest.skip('11k_hands_mini is absent')
    cfg = Config.fromfile(str(CONFIGS / 'vit_b16' / 'v1.py'))
    apply_cfg_options(cfg, path_options(data_root=str(root)))
    assert cfg.model.num_classes is None  # the config leaves it to the training set
    count = fill_num_classes(cfg)
    assert count == cfg.model.num_classes == 52  # dorsal-right training ids in the mini sample
    val = DATASETS.build(cfg.val_dataloader.dataset.to_dict())
    test = DATASETS.build(cfg.test_dataloader.dataset.to_dict())
    queries = sum(val.get_data_info(i)['is_query'] for i in range(len(val)))
    assert 0 < queries <= count  # one held-out image per training id that has two or more
    assert len(test.metainfo['splits']) == 10
    val_pids = {val.get_data_info(i)['pid'] for i in range(len(val))}
    test_pids = {test.get_data_info(i)['pid'] for i in range(len(test))}
    assert not val_pids & test_pids  # validation uses training identities only
