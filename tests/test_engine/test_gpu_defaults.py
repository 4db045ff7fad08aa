"""CUDA defaults completed into the config: bf16 autocast, TF32, pinned memory, cudnn benchmark.

The function takes ``cuda=True`` so the CUDA branch is checked on a CPU machine; the GPU run
itself is bench/gpu_check.sh.
"""

from __future__ import annotations

import pytest
import torch
from mmengine.config import Config

from promptsg.engine.config import complete_gpu_defaults


def _cfg(**extra) -> Config:
    cfg = dict(
        optim_wrapper=dict(type='ReIDOptimWrapper', optimizer=dict(type='AdamW', lr=1e-4)),
        train_dataloader=dict(batch_size=8),
        val_dataloader=dict(batch_size=8),
        env_cfg=dict(cudnn_benchmark=None),
        randomness=dict(seed=0, deterministic=False),
    )
    cfg.update(extra)
    return Config(cfg)


@pytest.fixture
def restore_tf32(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda *a, **k: True)
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def test_cuda_defaults(restore_tf32):
    torch.backends.cuda.matmul.allow_tf32 = False
    cfg = _cfg()
    complete_gpu_defaults(cfg, cuda=True)
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    assert cfg.train_dataloader.pin_memory and cfg.val_dataloader.pin_memory
    assert cfg.env_cfg.cudnn_benchmark is True
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32


def test_explicit_choices_are_kept(restore_tf32):
    torch.backends.cuda.matmul.allow_tf32 = False
    cfg = _cfg(allow_tf32=False, randomness=dict(seed=0, deterministic=True))
    cfg.optim_wrapper.dtype = None  # autocast switched off
    cfg.train_dataloader.pin_memory = False
    complete_gpu_defaults(cfg, cuda=True)
    assert cfg.optim_wrapper.dtype is None and cfg.train_dataloader.pin_memory is False
    assert cfg.env_cfg.cudnn_benchmark is False  # deterministic runs do not benchmark
    assert torch.backends.cuda.matmul.allow_tf32 is False


def test_nothing_changes_without_cuda():
    cfg = _cfg()
    before = cfg.to_dict()
    complete_gpu_defaults(cfg, cuda=False)
    assert cfg.to_dict() == before
