"""Fixtures of the user-tool tests: a tiny PromptSG checkpoint, a tiny training run of a shipped
config on real data, and loading a tool as a module."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from promptsg.apis import ReIDInferencer

ROOT = Path(__file__).resolve().parents[2]
#: A self-contained tiny PromptSG config shared with the API tests.
TINY_CONFIG = ROOT / 'tests' / 'test_apis' / 'tiny_promptsg.py'


@pytest.fixture(scope='session')
def checkpoint(tmp_path_factory) -> Path:
    """A checkpoint of the tiny PromptSG model with seeded random weights."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('ckpt') / 'tiny.pth'
    torch.save({'state_dict': ReIDInferencer(TINY_CONFIG).model.state_dict()}, path)
    return path


@pytest.fixture(scope='session')
def load_tool():
    """``load_tool('search')`` -> ``tools/search.py`` imported as a module (to call its main)."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(
            f'promptsg_tool_{name}', ROOT / 'tools' / f'{name}.py'
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


#: ``--cfg-options`` that swap a shipped config's CLIP for the tiny random ones.
TINY_BACKBONE = {'vit_b16': 'tiny-vit', 'rn50': 'tiny-rn'}


def _tiny_backbone(backbone: str = 'vit_b16') -> list[str]:
    return [f'model.backbone.arch={TINY_BACKBONE[backbone]}', 'model.backbone.pretrained=None']


@pytest.fixture(scope='session')
def tiny_backbone():
    """``tiny_backbone('rn50')`` -> the ``--cfg-options`` words of that tiny CLIP."""
    return _tiny_backbone


@pytest.fixture(scope='session')
def hands_v6_run(tmp_path_factory) -> Path:
    """The work dir of ``tools/train.py configs/vit_b16/v6.py`` on the real 11k Hands mini
    set with a tiny backbone, 2 epochs (about 15 s); skipped when the data is absent."""
    data = ROOT.parent / 'shared' / 'data' / '11k_hands_mini'
    if not data.is_dir():
        pytest.skip('../shared/data/11k_hands_mini is absent')
    work_dir = tmp_path_factory.mktemp('hands_v6') / 'v6'
    options = [
        *_tiny_backbone(),
        'train_cfg.max_epochs=2',
        'default_hooks.logger.interval=1',
        *[f'{s}_dataloader.num_workers=0' for s in ('train', 'val', 'test')],
    ]
    cmd = [sys.executable, str(ROOT / 'tools' / 'train.py'), str(ROOT / 'configs/vit_b16/v6.py')]
    cmd += ['--work-dir', str(work_dir), '--data-root', str(data), '--cfg-options', *options]
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work_dir
