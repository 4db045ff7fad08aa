"""A tiny PromptSG checkpoint and synthetic identity folders for the inference tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from promptsg.apis import ReIDInferencer
from promptsg.datasets.synthetic import draw_person

TINY_CONFIG = Path(__file__).resolve().parent / 'tiny_promptsg.py'


def save_random_checkpoint(path: Path, seed: int = 0, config: Path = TINY_CONFIG) -> Path:
    """Build the model of ``config`` with ``seed`` and save it as a checkpoint (no training);
    BatchNorm statistics are moved off their defaults so that loading them matters."""
    torch.manual_seed(seed)
    model = ReIDInferencer(config).model
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    torch.save({'state_dict': model.state_dict(), 'meta': {'seed': seed}}, path)
    return path


def write_identity_folders(root: Path, pids=(0, 1, 2, 3), per_id: int = 3) -> Path:
    """``root/<pid>/<i>.png``: synthetic people, one folder per identity."""
    for pid in pids:
        (root / str(pid)).mkdir(parents=True, exist_ok=True)
        for i in range(per_id):
            img = draw_person(7, pid, i, (96, 48))
            Image.fromarray(img).save(root / str(pid) / f'{i}.png')
    return root


@pytest.fixture(scope='session')
def tiny_config() -> Path:
    return TINY_CONFIG


@pytest.fixture(scope='session')
def make_checkpoint():
    """``make_checkpoint(path, seed=0)``: a random-weight checkpoint of the tiny config."""
    return save_random_checkpoint


@pytest.fixture(scope='session')
def tiny_checkpoint(tmp_path_factory) -> Path:
    return save_random_checkpoint(tmp_path_factory.mktemp('ckpt') / 'tiny.pth')


@pytest.fixture(scope='session')
def identity_folders(tmp_path_factory) -> Path:
    return write_identity_folders(tmp_path_factory.mktemp('people'))
