"""The 22 stage-3 version configs: they load, each holds only its SPEC §3 moves, and the values
after each version are the SPEC's."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from mmengine.config import Config

from promptsg.chronology.moves import diff_configs
from promptsg.chronology.versions import find_versions, read_notes

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / 'configs'
BACKBONES = {'vit_b16': ('CLIPViT', 'ViT-B-16'), 'rn50': ('CLIPResNet', 'RN50')}
VERSIONS = [f'v{n}' for n in range(1, 12)]
ALL = [(b, v) for b in BACKBONES for v in VERSIONS]

PIPELINE_SIZES = {
    'train_dataloader.dataset.pipeline.1.size',
    'train_dataloader.dataset.pipeline.3.size',
    'val_dataloader.dataset.pipeline.1.size',
    'test_dataloader.dataset.pipeline.1.size',
}
LR = 'optim_wrapper.paramwise_cfg.'
CLIP = 'optim_wrapper.clip_grad.max_norm'
PATIENCE = 'default_hooks.early_stopping.patience'

#: The keys each version changes vs the previous one (a component that appears, disappears or
#: changes type counts once), SPEC §3.
SHARED_CHANGES = {
    'v2': {
        'optim_wrapper.optimizer.weight_decay',
        'param_scheduler',
        'model.losses.supcon',
        'model.loss_balancer',
        PATIENCE,
    },
    'v3': {'model.losses.ce', 'model.loss_balancer.terms'},
    'v4': {'model.neck', 'model.head', 'model.losses.arcface', 'model.loss_balancer.terms'},
    'v5': {
        'model.inversion.variant',
        'model.prompt.template',
        'model.interaction.num_self_layers',
        'model.test_cfg.prompt',
    },
    'v6': {CLIP, LR + 'lr_clip_visual', LR + 'lr_modules'},
    'v9': {'train_cfg.max_epochs', PATIENCE},
    'v10': {'model.prompt.template'},
    'v11': {'model.backbone.img_size', *PIPELINE_SIZES},
}
CHANGES = {
    'vit_b16': {
        **SHARED_CHANGES,
        'v7': {'model.losses.arcface', 'model.loss_balancer.terms'},
        'v8': {
            'model.neck.bnneck_dim',
            'model.losses.arcface',
            'model.loss_balancer.terms',
            CLIP,
            'param_scheduler',
        },
    },
    'rn50': {
        **SHARED_CHANGES,
        'v7': {
            'model.backbone.unfreeze_blocks',
            'model.head.scale',
            'model.head.margin',
            LR + 'lr_clip_visual',
        },
        'v8': {
            'model.backbone.unfreeze_blocks',
            'model.neck.bnneck_dim',
            'model.head.scale',
            'model.losses.center',
            CLIP,
            LR + 'lr_clip_visual',
            LR + 'lr_modules',
            'param_scheduler',
        },
    },
}

V1_TEMPLATE = "A detailed photo of {}'s {aspect} hand for identification."
V5_TEMPLATE = 'A photo of a {} {aspect} hand.'
V10_TEMPLATE = "A captured frame showing a {} person's {aspect} hand during surveillance."
TRI_SUPCON = ['loss_triplet', 'loss_supcon']
ARC_TRI_SUPCON = ['loss_arcface', 'loss_triplet', 'loss_supcon']

#: Values after each version (checked on the resolved config), SPEC §3.
SHARED_FACTS = {
    'v1': {
        'model.head.type': 'LinearClassifier',
        'model.losses': ['ce', 'triplet'],
        'model.losses.ce.label_smoothing': 0.1,
        'model.losses.triplet.margin': 0.3,
        'model.inversion.variant': 'simple',
        'model.interaction.num_cross_layers': 1,
        'model.interaction.num_self_layers': 0,
        'model.prompt.template': V1_TEMPLATE,
        'model.feat_dropout': 0.1,
        'model.test_cfg.prompt': 'fixed',
        'model.neck': None,
        'model.loss_balancer': None,
        'optim_wrapper.optimizer.type': 'AdamW',
        'optim_wrapper.optimizer.weight_decay': 5e-4,
        LR + 'lr_clip_visual': 1e-4,
        LR + 'lr_modules': 1e-5,
        CLIP: 5.0,
        'param_scheduler': [],
        'train_cfg.max_epochs': 20,
        PATIENCE: 3,
        'model.backbone.img_size': (224, 224),
    },
    'v2': {
        'optim_wrapper.optimizer.weight_decay': 1e-4,
        'model.losses': ['ce', 'triplet', 'supcon'],
        'model.losses.supcon.temperature': 0.07,
        'model.loss_balancer.type': 'UncertaintyWeighting',
        'model.loss_balancer.terms': ['loss_ce', *TRI_SUPCON],
        PATIENCE: 7,
    },
    'v3': {'model.losses': ['triplet', 'supcon'], 'model.loss_balancer.terms': TRI_SUPCON},
    'v4': {
        'model.neck.type': 'BNNeck',
        'model.neck.bnneck_dim': 256,
        'model.head.type': 'ArcFaceHead',
        'model.head.scale': 30.0,
        'model.head.margin': 0.5,
        'model.losses': ['triplet', 'supcon', 'arcface'],
        'model.loss_balancer.terms': ARC_TRI_SUPCON,
    },
    'v5': {
        'model.inversion.variant': 'paper',
        'model.interaction.num_cross_layers': 1,
        'model.interaction.num_self_layers': 2,
        'model.test_cfg.prompt': 'composed',
        'model.prompt.template': V5_TEMPLATE,
    },
    'v6': {CLIP: 1.0, LR + 'lr_clip_visual': 1e-6, LR + 'lr_modules': 1e-6},
    'v9': {'train_cfg.max_epochs': 60, PATIENCE: 10},
    'v10': {'model.prompt.template': V10_TEMPLATE},
    'v11': {'model.backbone.img_size': (224, 128)},
}
FACTS = {
    'vit_b16': {
        **SHARED_FACTS,
        'v7': {'model.losses': ['triplet', 'supcon'], 'model.head.type': 'ArcFaceHead'},
        'v8': {
            'model.neck.bnneck_dim': 1024,
            CLIP: 0.5,
            'param_scheduler': [],
            'model.losses': ['triplet', 'supcon', 'arcface'],
            LR + 'lr_clip_visual': 1e-6,
            LR + 'lr_modules': 1e-6,
        },
    },
    'rn50': {
        **SHARED_FACTS,
        'v7': {
            LR + 'lr_clip_visual': 5e-4,
            'model.head.scale': 25.0,
            'model.head.margin': 0.35,
            'model.backbone.unfreeze_blocks': 2,
            'model.losses': ['triplet', 'supcon', 'arcface'],
        },
        'v8': {
            'model.backbone.unfreeze_blocks': 4,
            'model.head.scale': 30.0,
            'model.head.margin': 0.35,
            LR + 'lr_clip_visual': 1e-4,
            LR + 'lr_modules': 1e-4,
            CLIP: 0.5,
            'param_scheduler': [],
            'model.losses': ['triplet', 'supcon', 'arcface', 'center'],
            'model.neck.bnneck_dim': 1024,
        },
    },
}


def _get(cfg: dict, path: str):
    node = cfg
    for key in path.split('.'):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return list(node) if isinstance(node, dict) and path.endswith('losses') else node


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


@pytest.fixture(scope='module')
def resolved() -> dict[tuple[str, str], dict]:
    return {(b, v.name): v.resolved() for b in BACKBONES for v in find_versions(CONFIGS / b)}


def test_each_folder_holds_v1_to_v11():
    for backbone in BACKBONES:
        assert [v.name for v in find_versions(CONFIGS / backbone)] == VERSIONS


@pytest.mark.parametrize('backbone,version', ALL)
def test_config_loads_with_shared_settings(backbone, version):
    cfg = Config.fromfile(str(CONFIGS / backbone / f'{version}.py'))
    kind, arch = BACKBONES[backbone]
    assert cfg.model.type == 'PromptSG'
    assert (cfg.model.backbone.type, cfg.model.backbone.arch) == (kind, arch)
    assert cfg.model.backbone.pretrained == 'openai'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        assert (dataset.type, dataset.aspects) == ('Hands11k', 'dorsal right')
        assert dataset.data_root == 'data/11k_hands'
    assert cfg.val_dataloader.dataset.split == 'val'  # validation never sees test images
    assert cfg.test_dataloader.dataset.num_splits == 10
    assert cfg.train_dataloader.batch_size == 32
    assert cfg.train_dataloader.sampler == dict(type='PKSampler', num_instances=4)
    assert cfg.optim_wrapper.constructor == 'ReIDOptimWrapperConstructor'
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.default_hooks.early_stopping.type == 'ReIDEarlyStoppingHook'
    assert cfg.default_hooks.early_stopping.monitor == 'reid/mAP'
    assert cfg.default_hooks.checkpoint.save_best == 'reid/mAP'
    assert cfg.randomness.seed == 0


@pytest.mark.parametrize('backbone,version', ALL)
def test_version_inherits_previous_and_states_a_remark(backbone, version):
    path = CONFIGS / backbone / f'{version}.py'
    tree = ast.parse(path.read_text())
    base = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == '_base_'
    )
    number = int(version[1:])
    if number > 1:
        assert base == f'./v{number - 1}.py'
    else:
        assert any('_base_/models/' in b for b in base)
    assert read_notes(path)['remark'], f'{path} states no remark of its own'


@pytest.mark.parametrize('backbone,version', [(b, v) for b, v in ALL if v != 'v1'])
def test_version_changes_only_its_moves(resolved, backbone, version):
    previous = f'v{int(version[1:]) - 1}'
    changes = diff_configs(resolved[backbone, previous], resolved[backbone, version])
    assert {c.path for c in changes} == CHANGES[backbone][version]


@pytest.mark.parametrize('backbone,version', [(b, v) for b, v in ALL if v in FACTS[b]])
def test_version_values_follow_spec(resolved, backbone, version):
    cfg = resolved[backbone, version]
    for path, expected in FACTS[backbone][version].items():
        assert _plain(_get(cfg, path)) == _plain(expected), f'{backbone}/{version}: {path}'


def test_spec_examples(resolved):
    """The issue's examples, spelled out."""
    vit6 = resolved['vit_b16', 'v6']['optim_wrapper']
    assert vit6['clip_grad']['max_norm'] == 1.0
    assert vit6['paramwise_cfg']['lr_clip_visual'] == vit6['paramwise_cfg']['lr_modules'] == 1e-6
    vit11 = resolved['vit_b16', 'v11']
    assert tuple(vit11['model']['backbone']['img_size']) == (224, 128)
    sizes = {
        tuple(t['size']) for t in vit11['test_dataloader']['dataset']['pipeline'] if 'size' in t
    }
    assert sizes == {(224, 128)}
    rn8 = resolved['rn50', 'v8']['model']
    assert rn8['backbone']['unfreeze_blocks'] == 4
    assert rn8['losses']['center']['type'] == 'CenterLoss'


def test_warmup_is_one_epoch_then_cosine_to_1e7(resolved):
    warmup, cosine = resolved['vit_b16', 'v2']['param_scheduler']
    assert (warmup['type'], warmup['begin'], warmup['end']) == ('LinearLR', 0, 1)
    assert warmup['by_epoch'] and warmup['convert_to_iter_based']  # updated every iteration
    assert (cosine['type'], cosine['begin'], cosine['end']) == ('CosineAnnealingLR', 1, 20)
    assert cosine['eta_min'] == 1e-7


def test_as_run_notes_are_not_inherited():
    assert read_notes(CONFIGS / 'vit_b16' / 'v6.py')['as_run']
    assert read_notes(CONFIGS / 'vit_b16' / 'v7.py')['as_run'] == ''
