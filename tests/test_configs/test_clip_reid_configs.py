"""Every CLIP-ReID config carries the official recipe, and builds and trains one iteration of
each stage with a tiny backbone (person sets on a tiny fixture in their own layout, the hand set
on synthetic identities); the tiny CUHK03-mini config trains both stages end to end through
tools/train.py on the real mini set."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from test_person_reid_configs import make_fixture, small, tiny_options

from promptsg.engine.config import fill_num_classes, load_config
from promptsg.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / 'configs'
PERSON = ('market1501', 'msmt17', 'dukemtmc', 'occluded-duke')
PAPER_CONFIGS = sorted(
    p.relative_to(CONFIGS).as_posix() for p in (CONFIGS / 'clip_reid').glob('*_1xb64_*.py')
)
HAND_CONFIGS = sorted(
    p.relative_to(CONFIGS).as_posix() for p in (CONFIGS / 'clip_reid').glob('*hands11k*.py')
)
TINY_CONFIG = 'clip_reid/clip-reid_tiny-vit_1xb32_cuhk03-mini.py'
CAMERAS = {'market1501': 6, 'msmt17': 15, 'dukemtmc': 8, 'occluded-duke': 8}


@pytest.fixture(autouse=True)
def _deep_tiny_archs(deep_tiny_archs):
    """tiny_options (test_person_reid_configs) names the tiny archs with three last blocks."""


@pytest.fixture(scope='module', autouse=True)
def promptsg_scope():
    with DefaultScope.overwrite_default_scope('promptsg'):
        yield


def test_every_person_set_and_variant_has_a_config():
    names = {Path(p).stem for p in PAPER_CONFIGS}
    expected = {
        f'clip-reid_{variant}_1xb64_{data}'
        for variant in ('vit-b16', 'rn50', 'vit-b16-sie-olp')
        for data in PERSON
    }
    assert names == expected
    assert [Path(p).stem for p in HAND_CONFIGS] == [
        'clip-reid_rn50_1xb32_hands11k-dorsal-right',
        'clip-reid_vit-b16_1xb32_hands11k-dorsal-right',
    ]


@pytest.mark.parametrize('config', PAPER_CONFIGS)
def test_official_recipe(config):
    cfg = load_config(str(CONFIGS / config))
    vit = '_vit-b16' in config
    assert cfg.model.type == 'CLIPReID'
    assert cfg.train_dataloader.batch_size == 64
    assert cfg.train_dataloader.sampler.num_instances == 4
    assert tuple(cfg.model.backbone.img_size) == (256, 128)
    assert cfg.model.prompt_learner.template == 'A photo of a {} person.'
    assert cfg.model.prompt_learner.num_tokens == 4
    stages = cfg.custom_hooks[0]
    assert stages.type == 'TrainingStagesHook'
    prompt_epochs, image_epochs = (120, 60) if vit else (60, 120)
    assert [(s['name'], s['epochs']) for s in stages.stages] == [
        ('prompt', prompt_epochs),
        ('image', image_epochs),
    ]
    assert cfg.train_cfg.max_epochs == prompt_epochs + image_epochs
    assert cfg.train_cfg.val_begin == prompt_epochs + 1
    ow = cfg.optim_wrapper
    assert ow.constructor == 'StageOptimWrapperConstructor'
    assert ow.prompt.optimizer == dict(type='Adam', lr=3.5e-4, weight_decay=1e-4)
    assert ow.prompt.params == ['prompt_learner.']
    assert ow.image.exclude == ['prompt_learner.']
    image_opt = (
        dict(type='Adam', lr=5e-6, weight_decay=1e-4)
        if vit
        else dict(type='Adam', lr=3.5e-4, weight_decay=5e-4)
    )
    assert ow.image.optimizer == image_opt
    assert ow.image.paramwise_cfg == dict(bias_lr_mult=2.0)  # official BIAS_LR_FACTOR
    warmup, steps = cfg.param_scheduler['image']
    assert warmup.start_factor == (0.1 if vit else 0.01) and warmup.end - warmup.begin == 10
    assert steps.milestones == ([30, 50] if vit else [40, 70]) and steps.gamma == 0.1
    assert steps.begin == prompt_epochs
    assert cfg.model.losses.ce.loss_weight == (0.25 if vit else 1.0)
    assert cfg.model.official_heads is True  # two branches, as the official code
    assert cfg.model.neck == dict(type='BNNeck', freeze_bias=True)
    assert cfg.model.losses.ce_pre.loss_weight == cfg.model.losses.ce.loss_weight
    assert cfg.model.losses.ce_pre.inputs == ('logits_pre', 'pid')
    assert cfg.model.losses.tri_pre.inputs == ('feat_pre', 'pid')
    assert cfg.model.losses.tri_inner.inputs == ('feat_inner', 'pid')
    assert vit or cfg.model.backbone.last_stride == 1  # the official RN50 layer4 keeps stride 1
    assert cfg.model.losses.ce.label_smoothing == 0.1
    assert cfg.model.losses.triplet.margin == 0.3
    assert cfg.model.losses.i2t_ce.type == 'ImageToTextCELoss'
    backbone = cfg.model.backbone
    if 'sie-olp' in config:
        data = config.split('_1xb64_')[1][:-3]
        assert backbone.patch_stride == 12 and backbone.sie_coef == 1.0
        assert backbone.sie_cameras == CAMERAS[data]
    else:
        assert backbone.get('patch_stride') is None and not backbone.get('sie_cameras')


def _train_both_stages(cfg, batch_size: int) -> None:
    """One training step of each stage, as the stages hook switches them."""
    model = MODELS.build(cfg.model)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    batch = next(iter(loader))
    assert batch['inputs'].shape[0] == batch_size
    model.train()
    for stage, moving in (('prompt', 'prompt_learner.'), ('image', 'backbone.')):
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        optim_wrapper.activate(stage)
        model.set_stage(stage)
        log_vars = model.train_step(batch, optim_wrapper)
        assert math.isfinite(float(log_vars['loss'].detach()))
        moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
        assert moved and all(n.startswith(moving) for n in moved if stage == 'prompt')
        assert any(n.startswith(moving) for n in moved)
        assert not any(n.startswith('prompt_learner.') for n in moved if stage == 'image')


@pytest.mark.parametrize('config', PAPER_CONFIGS)
def test_config_trains_one_iteration_per_stage(config, tmp_path):
    spec = load_config(str(CONFIGS / config))
    data_root = make_fixture(spec.train_dataloader.dataset.type, tmp_path / 'data')
    options = tiny_options(spec, data_root)
    if spec.model.backbone.get('patch_stride'):
        options['model.backbone.patch_stride'] = 24  # OLP on the tiny arch's 32-pixel patches
    cfg = load_config(str(CONFIGS / config), options)
    fill_num_classes(cfg)
    _train_both_stages(cfg, 16)


@pytest.mark.parametrize('config', HAND_CONFIGS)
def test_hand_config_trains_one_iteration_per_stage(config):
    spec = load_config(str(CONFIGS / config))
    assert spec.model.prompt_learner.template == 'A photo of a {} {aspect} hand.'
    assert spec.model.prompt_learner.aspect == 'dorsal right'
    synthetic = dict(
        type='SyntheticReID',
        num_train_ids=4,
        num_test_ids=4,
        images_per_id=4,
        img_size=(32, 32),
        seed=0,
    )
    size = small(spec.model.backbone.img_size)
    options = {
        'model.backbone.arch': 'tiny-vit' if spec.model.backbone.type == 'CLIPViT' else 'tiny-rn',
        'model.backbone.pretrained': None,
        'model.backbone.img_size': size,
        'model.num_classes': 4,
        'train_dataloader.batch_size': 16,
        'train_dataloader.num_workers': 0,
    }
    cfg = load_config(str(CONFIGS / config), options)
    pipeline = [
        {**t, 'size': size} if 'size' in t else dict(t)
        for t in spec.train_dataloader.dataset.pipeline
    ]
    cfg.train_dataloader.dataset = dict(synthetic, split='train', pipeline=pipeline)
    _train_both_stages(cfg, 16)


@pytest.mark.slow
def test_tiny_cuhk03_mini_trains_both_stages_through_tools_train(shared_data, tmp_path):
    """tools/train.py on the real mini set: 2 prompt epochs, 2 image epochs with validation,
    the best checkpoint tested."""
    root = shared_data / 'cuhk03_mini'
    if not root.is_dir():
        pytest.skip('cuhk03_mini is absent')
    work_dir = tmp_path / 'work'
    cmd = [sys.executable, str(ROOT / 'tools' / 'train.py'), str(CONFIGS / TINY_CONFIG)]
    cmd += ['--work-dir', str(work_dir), '--data-root', str(root), '--cfg-options']
    cmd += [
        'train_cfg.max_epochs=4',
        'train_cfg.val_begin=3',
        'custom_hooks.0.stages.0.epochs=2',
        'custom_hooks.0.stages.1.epochs=2',
        'train_dataloader.num_workers=0',
        'val_dataloader.num_workers=0',
        'test_dataloader.num_workers=0',
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stdout + done.stderr
    assert "epoch 1: stage 'prompt' begins" in log and "epoch 3: stage 'image' begins" in log
    assert 'cached the text features of 40 identities' in log
    assert 'testing the best checkpoint' in log
    metrics = json.loads((work_dir / 'test_metrics.json').read_text())
    assert metrics['reid/num_valid_queries'] > 0 and 0 <= metrics['reid/mAP'] <= 100
