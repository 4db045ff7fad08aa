"""ReIDOptimWrapperConstructor: lr_clip_visual for the image encoder, lr_modules for the rest,
the text encoder and frozen parameters in no group, weight decay rules, printed groups."""

from __future__ import annotations

import re

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from promptsg.engine.optimizers import ReIDOptimWrapper, ReIDOptimWrapperConstructor
from promptsg.errors import ConfigError
from promptsg.registry import MODELS

OPTIM = dict(
    constructor='ReIDOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=5e-4),
    paramwise_cfg=dict(lr_clip_visual=1e-4, lr_modules=1e-5),
)


def _model(tiny_config, **model_options):
    cfg = Config.fromfile(str(tiny_config()))
    cfg.model.update(model_options)
    init_default_scope('promptsg')
    return MODELS.build(cfg.model)


@pytest.fixture
def model(tiny_config):
    return _model(
        tiny_config,
        backbone=dict(type='CLIPViT', arch='tiny-vit', img_size=(64, 32), unfreeze_blocks=1),
        loss_balancer=dict(
            type='UncertaintyWeighting', terms=['loss_ce', 'loss_triplet', 'loss_supcon']
        ),
    )


def _groups(optim_wrapper) -> dict[str, dict]:
    return {g['name']: g for g in optim_wrapper.optimizer.param_groups}


def _names(model, group) -> set[str]:
    ids = {id(p) for p in group['params']}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def test_two_learning_rates_and_who_gets_which(model):
    optim_wrapper = build_optim_wrapper(model, dict(OPTIM))
    assert isinstance(optim_wrapper, ReIDOptimWrapper)
    groups = _groups(optim_wrapper)
    assert set(groups) == {'clip_visual', 'modules', 'modules_no_decay'}
    assert groups['clip_visual']['lr'] == 1e-4
    assert groups['modules']['lr'] == groups['modules_no_decay']['lr'] == 1e-5
    visual = _names(model, groups['clip_visual'])
    modules = _names(model, groups['modules']) | _names(model, groups['modules_no_decay'])
    assert visual and all(n.startswith('backbone.visual.') for n in visual)
    for part in ('inversion.', 'interaction.', 'neck.', 'head.', 'loss_balancer.'):
        assert any(n.startswith(part) for n in modules), part
    assert not any(n.startswith('backbone.') for n in modules)
    held = visual | modules
    for name, param in model.named_parameters():
        if name.startswith('backbone.text_encoder.'):
            assert name not in held  # the text encoder is never optimised
        elif param.requires_grad:
            assert name in held, name  # every trainable parameter is in a group (SPEC §5.5)
        else:
            assert name not in held, name  # frozen blocks are in no group


def test_unfreeze_blocks_leaves_only_the_last_blocks_in_the_visual_group(model):
    groups = _groups(build_optim_wrapper(model, dict(OPTIM)))
    visual = _names(model, groups['clip_visual'])
    assert any(n.startswith('backbone.visual.transformer.resblocks.1.') for n in visual)
    assert not any(n.startswith('backbone.visual.transformer.resblocks.0.') for n in visual)
    assert not any(n.startswith('backbone.visual.conv1') for n in visual)


def test_text_encoder_stays_out_even_when_trainable(model):
    model.backbone.text_encoder.requires_grad_(True)
    groups = build_optim_wrapper(model, dict(OPTIM)).optimizer.param_groups
    held = {n for g in groups for n in _names(model, g)}
    assert not any(n.startswith('backbone.text_encoder.') for n in held)


def test_balancer_log_vars_never_decay_and_norm_bias_decay_switch(model):
    groups = _groups(build_optim_wrapper(model, dict(OPTIM)))
    assert _names(model, groups['modules_no_decay']) == {'loss_balancer.log_vars'}
    assert groups['modules_no_decay']['weight_decay'] == 0.0
    assert groups['modules']['weight_decay'] == groups['clip_visual']['weight_decay'] == 5e-4

    cfg = dict(OPTIM, paramwise_cfg=dict(OPTIM['paramwise_cfg'], norm_bias_decay=False))
    groups = _groups(build_optim_wrapper(model, cfg))
    no_decay = _names(model, groups['clip_visual_no_decay']) | _names(
        model, groups['modules_no_decay']
    )
    decay = _names(model, groups['clip_visual']) | _names(model, groups['modules'])
    assert 'neck.bn.weight' in no_decay and 'backbone.visual.ln_post.weight' in no_decay
    assert all(not n.endswith('bias') for n in decay)
    assert any(n.endswith('bias') for n in no_decay)
    assert 'backbone.visual.proj' in decay and 'head.fc.weight' in decay
    assert groups['clip_visual_no_decay']['lr'] == 1e-4


def test_bias_lr_mult_gives_every_bias_its_own_group_at_a_multiple_of_the_lr(model):
    cfg = dict(OPTIM, paramwise_cfg=dict(OPTIM['paramwise_cfg'], bias_lr_mult=2.0))
    groups = _groups(build_optim_wrapper(model, cfg))
    assert set(groups) == {
        'clip_visual',
        'clip_visual_bias',
        'modules',
        'modules_bias',
        'modules_no_decay',
    }
    assert groups['clip_visual_bias']['lr'] == 2e-4 and groups['clip_visual']['lr'] == 1e-4
    assert groups['modules_bias']['lr'] == 2e-5 and groups['modules']['lr'] == 1e-5
    assert groups['clip_visual_bias']['weight_decay'] == 5e-4  # decay as the weights
    biases = _names(model, groups['clip_visual_bias']) | _names(model, groups['modules_bias'])
    weights = _names(model, groups['clip_visual']) | _names(model, groups['modules'])
    assert 'neck.bn.bias' in biases and 'head.fc.weight' in weights
    assert any(n.endswith('in_proj_bias') for n in biases)
    assert all('bias' in n for n in biases) and not any('bias' in n for n in weights)
    plain = build_optim_wrapper(model, dict(OPTIM)).optimizer.param_groups
    assert sum(len(g['params']) for g in groups.values()) == sum(len(g['params']) for g in plain)

    cfg['paramwise_cfg']['norm_bias_decay'] = False
    groups = _groups(build_optim_wrapper(model, cfg))
    assert groups['clip_visual_bias_no_decay']['lr'] == 2e-4
    assert groups['clip_visual_bias_no_decay']['weight_decay'] == 0.0


def test_group_lr_defaults_to_the_optimizer_lr(model):
    cfg = dict(OPTIM, paramwise_cfg=dict(lr_modules=1e-5))
    groups = _groups(build_optim_wrapper(model, cfg))
    assert groups['clip_visual']['lr'] == 1e-3 and groups['modules']['lr'] == 1e-5


def test_groups_are_printed_with_parameter_counts(model, capsys):
    MMLogger.get_instance('optim_groups_test', log_level='INFO')
    build_optim_wrapper(model, dict(OPTIM))
    out = capsys.readouterr().out
    assert 'optimiser parameter groups' in out
    visual = sum(
        p.numel()
        for n, p in model.named_parameters()
        if n.startswith('backbone.visual') and p.requires_grad
    )
    assert f'{visual:,}' in out
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert f'{frozen:,} frozen' in out


@pytest.mark.parametrize(
    'paramwise, message',
    [
        (dict(lr_visual=1e-4), "unknown key(s) ['lr_visual']"),
        (dict(lr_clip_visual=0), 'lr_clip_visual must be a positive number'),
        (dict(lr_modules='fast'), 'lr_modules must be a positive number'),
        (dict(bias_lr_mult=-2), 'bias_lr_mult must be a positive number'),
        (dict(no_decay_keys='loss_balancer'), 'no_decay_keys must be a list'),
    ],
)
def test_config_mistakes_are_config_errors(paramwise, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        ReIDOptimWrapperConstructor(
            dict(optimizer=dict(type='AdamW', lr=1e-3)), paramwise_cfg=paramwise
        )
    with pytest.raises(ConfigError, match='optimizer'):
        ReIDOptimWrapperConstructor(dict(clip_grad=None))


def test_adam_steps_only_the_grouped_parameters(model):
    optim_wrapper = build_optim_wrapper(model, dict(OPTIM))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.ones_like(p)  # even a frozen parameter with a gradient must not move
    optim_wrapper.step()
    for name, param in model.named_parameters():
        moved = not torch.equal(before[name], param.detach())
        trainable = param.requires_grad and not name.startswith('backbone.text_encoder.')
        assert moved == trainable, name
