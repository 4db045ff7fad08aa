"""find_unused_parameters='auto': on only when a configured part is unused in training."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
from mmengine.registry import DefaultScope

from promptsg.engine.ddp import ReIDDistributedDataParallel, needs_unused_parameters
from promptsg.errors import ConfigError
from promptsg.registry import MODEL_WRAPPERS, MODELS

LOSSES = dict(
    ce=dict(type='CrossEntropyLoss'),
    triplet=dict(type='TripletLoss'),
    supcon=dict(type='SupConLoss', loss_weight=0.5),
)


def _model(**overrides):
    cfg = dict(
        type='PromptSG',
        num_classes=4,
        backbone=dict(type='CLIPViT', arch='tiny-vit', img_size=(64, 32)),
        inversion=dict(type='InversionNetwork', hidden_dim=32),
        interaction=dict(type='MultimodalInteraction', num_heads=4, num_self_layers=0),
        neck=dict(type='BNNeck', bnneck_dim=16),
        head=dict(type='LinearClassifier'),
        losses=LOSSES,
    )
    cfg.update(overrides)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('promptsg'):
        return MODELS.build(cfg)


def _grads_missing(model) -> set[str]:
    """Top-level parts with a trainable parameter that got no gradient in one step."""
    model.train()
    losses = model.loss(torch.randn(8, 3, 64, 32), {'pid': torch.arange(8) // 2})
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    return {
        n.split('.')[0]
        for n, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not p.grad.any())
    }


@pytest.mark.parametrize(
    'losses, unused',
    [
        (None, []),
        # ViT v7: the head is kept, its loss off
        (dict(ce=None), ['head', 'neck']),
        (dict(ce=None, triplet=dict(type='TripletLoss', inputs=('neck_feat', 'pid'))), ['head']),
    ],
)
def test_unused_parts_match_the_parts_without_gradient(losses, unused):
    model = _model(losses={**LOSSES, **(losses or {})})
    assert sorted(model.unused_in_training()) == sorted(unused)
    assert _grads_missing(model) == set(unused)


def test_global_retrieval_without_supcon_leaves_the_prompt_path_unused():
    model = _model(
        retrieval_feature='global',
        losses=dict(ce=dict(type='CrossEntropyLoss'), triplet=dict(type='TripletLoss')),
    )
    assert sorted(model.unused_in_training()) == ['interaction', 'inversion']
    assert _grads_missing(model) == {'interaction', 'inversion'}


def test_auto_resolution_and_bad_values():
    model = _model()
    assert needs_unused_parameters(model, 'auto') is False
    assert needs_unused_parameters(torch.nn.Linear(2, 2), 'auto') is True  # cannot tell
    assert needs_unused_parameters(model, True) is True
    with pytest.raises(ConfigError, match="True, False or 'auto'"):
        needs_unused_parameters(model, 'yes')


def test_the_wrapper_is_registered_and_sets_ddp(monkeypatch):
    assert MODEL_WRAPPERS.get('ReIDDistributedDataParallel') is ReIDDistributedDataParallel
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=0, world_size=1)
    try:
        lean = ReIDDistributedDataParallel(_model())
        loose = ReIDDistributedDataParallel(_model(losses=dict(triplet=dict(type='TripletLoss'))))
        assert lean.find_unused_parameters is False
        assert loose.find_unused_parameters is True
    finally:
        dist.destroy_process_group()
