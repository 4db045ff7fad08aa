"""Registries: every kind builds by name with and without the Runner's default scope, mmengine's
components resolve through our registries, unknown names fail in one line, plugins register."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import OrderedDict
from pathlib import Path

import mmengine.registry as mm
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch import nn

from promptsg.errors import ConfigError, UnknownComponentError
from promptsg.registry import (
    BACKBONES,
    DATA_SAMPLERS,
    DATASETS,
    EVALUATOR,
    FUNCTIONS,
    HEADS,
    HOOKS,
    KINDS,
    LOG_PROCESSORS,
    LOOPS,
    LOSSES,
    METRICS,
    MODEL_WRAPPERS,
    MODELS,
    OPTIM_WRAPPER_CONSTRUCTORS,
    OPTIM_WRAPPERS,
    OPTIMIZERS,
    PARAM_SCHEDULERS,
    PROMPT_MODULES,
    RUNNERS,
    TRANSFORMS,
    VISBACKENDS,
    VISUALIZERS,
    WEIGHT_INITIALIZERS,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / 'tests' / 'fixtures'
QUICKSTART = ROOT / 'configs' / 'quickstart' / 'synthetic_promptsg.py'

TINY_BACKBONE = dict(type='CLIPViT', arch='tiny-vit', img_size=(64, 32), pretrained=None)
SYNTHETIC = dict(type='SyntheticReID', num_train_ids=2, num_test_ids=1, images_per_id=2)


@pytest.fixture(params=['promptsg', None], ids=['in_scope', 'no_scope'])
def default_scope(request, monkeypatch):
    """Run the test under the Runner's default scope ('promptsg'), or with none at all."""
    monkeypatch.setattr(DefaultScope, '_instance_dict', OrderedDict())
    if request.param:
        DefaultScope.get_instance('test_registry', scope_name=request.param)
    assert (DefaultScope.get_current_instance() is None) == (request.param is None)
    return request.param


def _tiny_model() -> nn.Module:
    return nn.Linear(4, 2)


def _build_constructor():
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(
            type='DefaultOptimWrapperConstructor',
            optim_wrapper_cfg=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)),
        )
    )
    assert isinstance(constructor(_tiny_model()).optimizer, torch.optim.AdamW)
    return constructor


#: One of our components (or mmengine's, where we have none) per listed kind, built by name.
BUILDS = {
    'backbones': lambda: BACKBONES.build(dict(TINY_BACKBONE, with_text=False)),
    'prompt_modules': lambda: PROMPT_MODULES.build(
        dict(type='InversionNetwork', in_dim=8, token_dim=8, hidden_dim=8)
    ),
    'heads': lambda: HEADS.build(dict(type='BNNeck', in_channels=8)),
    'losses': lambda: LOSSES.build(dict(type='TripletLoss', margin=0.3)),
    'models': lambda: MODELS.build(
        dict(
            type='ReIDBaseline',
            num_classes=2,
            backbone=dict(TINY_BACKBONE, with_text=False),
            head=dict(type='LinearClassifier'),
            losses=dict(ce=dict(type='CrossEntropyLoss')),
        )
    ),
    'datasets': lambda: DATASETS.build(SYNTHETIC),
    'samplers': lambda: DATA_SAMPLERS.build(
        dict(
            type='PKSampler',
            dataset=DATASETS.build(SYNTHETIC),
            batch_size=4,
            num_instances=2,
            seed=0,
        )
    ),
    'transforms': lambda: TRANSFORMS.build(dict(type='Resize', size=(32, 16))),
    'metrics': lambda: METRICS.build(dict(type='ReIDMetric')),
    'hooks': lambda: HOOKS.build(dict(type='ReIDTrainingHook')),
    'schedulers': lambda: PARAM_SCHEDULERS.build(
        dict(
            type='CosineAnnealingLR',
            optimizer=torch.optim.SGD(_tiny_model().parameters(), lr=0.1),
            T_max=4,
        )
    ),
    'optim_wrapper_constructors': lambda: _build_constructor(),
    'optimizers': lambda: OPTIMIZERS.build(
        dict(type='AdamW', params=_tiny_model().parameters(), lr=1e-3)
    ),
    'optim_wrappers': lambda: OPTIM_WRAPPERS.build(
        dict(type='OptimWrapper', optimizer=torch.optim.SGD(_tiny_model().parameters(), lr=0.1))
    ),
    'evaluators': lambda: EVALUATOR.build(dict(type='Evaluator', metrics=[])),
    'log_processors': lambda: LOG_PROCESSORS.build(dict(type='LogProcessor')),
    'vis_backends': lambda: VISBACKENDS.build(dict(type='LocalVisBackend', save_dir='unused')),
}

#: Kinds the Runner builds from a whole config (or a model's init_cfg): looked up by a name a
#: config gives.
LOOKUPS = {
    'loops': (LOOPS, 'EpochBasedTrainLoop'),
    'runners': (RUNNERS, 'Runner'),
    'visualizers': (VISUALIZERS, 'Visualizer'),
    'model_wrappers': (MODEL_WRAPPERS, 'MMDistributedDataParallel'),
    'functions': (FUNCTIONS, 'default_collate'),
    'weight_initializers': (WEIGHT_INITIALIZERS, 'Constant'),
}


def test_every_listed_kind_has_a_build_check():
    assert set(BUILDS) | set(LOOKUPS) == set(KINDS)


@pytest.mark.parametrize('kind', sorted(LOOKUPS))
def test_every_runner_built_kind_resolves_by_name(kind, default_scope):
    registry, name = LOOKUPS[kind]
    assert registry is KINDS[kind] and registry.get(name) is not None
    assert name in registry.names()


@pytest.mark.parametrize('kind', sorted(BUILDS))
def test_every_kind_builds_by_name(kind, default_scope):
    built = BUILDS[kind]()
    assert built is not None
    name = type(built).__name__
    assert name in KINDS[kind].names()


def test_mmengine_roots_reach_our_components_under_the_default_scope(monkeypatch):
    """The Runner builds through mmengine's roots; the default scope hands over to ours."""
    monkeypatch.setattr(DefaultScope, '_instance_dict', OrderedDict())
    DefaultScope.get_instance('test_registry', scope_name='promptsg')
    dataset = mm.DATASETS.build(SYNTHETIC)
    assert type(dataset).__name__ == 'SyntheticReID'
    sampler = mm.DATA_SAMPLERS.build(
        dict(type='PKSampler', dataset=dataset, batch_size=4, num_instances=2, seed=0)
    )
    assert type(sampler).__name__ == 'PKSampler'
    assert type(mm.METRICS.build(dict(type='ReIDMetric'))).__name__ == 'ReIDMetric'
    assert type(mm.HOOKS.build(dict(type='ReIDTrainingHook'))).__name__ == 'ReIDTrainingHook'
    assert type(mm.TRANSFORMS.build(dict(type='LoadImage'))).__name__ == 'LoadImage'
    preprocessor = mm.MODELS.build(dict(type='ReIDDataPreprocessor'))
    assert type(preprocessor).__name__ == 'ReIDDataPreprocessor'


def test_mmengine_components_resolve_through_our_registries(default_scope):
    assert OPTIMIZERS.get('AdamW') is torch.optim.AdamW
    assert PARAM_SCHEDULERS.get('CosineAnnealingLR').__module__.startswith('mmengine')
    assert PARAM_SCHEDULERS.get('LinearLR').__module__.startswith('mmengine')
    assert HOOKS.get('CheckpointHook').__module__.startswith('mmengine')
    assert HOOKS.get('EarlyStoppingHook').__module__.startswith('mmengine')
    assert MODELS.get('BaseDataPreprocessor').__module__.startswith('mmengine')
    hook = HOOKS.build(dict(type='CheckpointHook', interval=1, save_best='reid/mAP'))
    assert type(hook).__name__ == 'CheckpointHook'
    optimizer = OPTIMIZERS.build(dict(type='AdamW', params=_tiny_model().parameters(), lr=1e-3))
    assert isinstance(optimizer, torch.optim.AdamW)


def test_mmengine_components_resolve_in_a_fresh_process():
    """Nothing else imported first: our registries must import their mmengine parents' modules."""
    code = textwrap.dedent(
        """
        from promptsg.registry import HOOKS, OPTIMIZERS, PARAM_SCHEDULERS, OPTIM_WRAPPERS
        assert OPTIMIZERS.get('AdamW').__name__ == 'AdamW'
        assert PARAM_SCHEDULERS.get('CosineAnnealingLR').__name__ == 'CosineAnnealingLR'
        assert 'MultiStepLR' in PARAM_SCHEDULERS.names()
        assert OPTIM_WRAPPERS.get('AmpOptimWrapper').__name__ == 'AmpOptimWrapper'
        assert HOOKS.get('CheckpointHook').__name__ == 'CheckpointHook'
        """
    )
    proc = subprocess.run(
        [sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr.strip().splitlines()[-1:]


@pytest.mark.parametrize(
    'registry, bad, closest',
    [
        (HEADS, 'BNNek', 'BNNeck'),
        (BACKBONES, 'CLIPVit', 'CLIPViT'),
        (LOSSES, 'TripletLos', 'TripletLoss'),
        (PROMPT_MODULES, 'PromptComposr', 'PromptComposer'),
        (MODELS, 'PromptSGG', 'PromptSG'),
        (DATASETS, 'Market1051', 'Market1501'),
        (DATA_SAMPLERS, 'PKSamplr', 'PKSampler'),
        (METRICS, 'ReIDMetrc', 'ReIDMetric'),
        (HOOKS, 'ReIDTrainingHok', 'ReIDTrainingHook'),
        (TRANSFORMS, 'PackReIDInput', 'PackReIDInputs'),
    ],
)
def test_unknown_name_is_one_line_naming_kind_name_and_closest_choices(
    registry, bad, closest, default_scope
):
    with pytest.raises(UnknownComponentError) as info:
        registry.build(dict(type=bad))
    message = str(info.value)
    assert isinstance(info.value, KeyError) and isinstance(info.value, ConfigError)
    assert '\n' not in message
    assert registry.name in message and f"'{bad}'" in message
    listed = message.split('closest first): ', 1)[1].split(', ')
    assert listed[0] == closest
    assert set(registry.names()) == set(listed)


def test_unknown_name_through_mmengine_root_under_the_default_scope(monkeypatch):
    monkeypatch.setattr(DefaultScope, '_instance_dict', OrderedDict())
    DefaultScope.get_instance('test_registry', scope_name='promptsg')
    with pytest.raises(UnknownComponentError, match=r"unknown model 'PromptSGG'.*PromptSG"):
        mm.MODELS.build(dict(type='PromptSGG'))
    with pytest.raises(UnknownComponentError, match=r"unknown dataset 'Synthetic'.*SyntheticReID"):
        mm.DATASETS.build(dict(type='Synthetic'))


def _plugin_config(tmp_path: Path) -> Config:
    cfg_file = tmp_path / 'plugin_cfg.py'
    cfg_file.write_text(
        f'_base_ = [{str(QUICKSTART)!r}]\n'
        "custom_imports = dict(imports=['reid_plugin_demo'], allow_failed_imports=False)\n"
        'model = dict(\n'
        '    num_classes=4,\n'
        '    backbone=dict(img_size=(64, 32)),\n'
        "    head=dict(_delete_=True, type='CosineClassifier', scale=10.0),\n"
        ')\n'
    )
    return Config.fromfile(str(cfg_file))


def test_custom_imports_plugin_builds_by_name(tmp_path, monkeypatch, default_scope):
    monkeypatch.syspath_prepend(str(FIXTURES))
    cfg = _plugin_config(tmp_path)
    assert 'reid_plugin_demo' in sys.modules
    assert 'CosineClassifier' in HEADS.names()
    head = HEADS.build(dict(type='CosineClassifier', in_channels=8, num_classes=3))
    assert head(torch.randn(5, 8)).shape == (5, 3)
    with DefaultScope.overwrite_default_scope('promptsg'):
        model = MODELS.build(cfg.model)
    assert type(model.head).__name__ == 'CosineClassifier'
    assert model.head.weight.shape == (4, model.feat_dim)
    batch = torch.randint(0, 256, (8, 3, 64, 32), dtype=torch.uint8)
    data = model.data_preprocessor(
        {'inputs': batch, 'data_samples': {'pid': torch.arange(8) % 4}}, True
    )
    losses = model(**data, mode='loss')
    losses['loss_ce'].backward()
    assert model.head.weight.grad.abs().sum() > 0
