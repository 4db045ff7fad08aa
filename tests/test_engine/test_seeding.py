"""Data-loader workers draw new augmentations every epoch, reproducibly under a fixed seed."""

from __future__ import annotations

import random
from functools import partial

import numpy as np
import torch
from mmengine.dataset.utils import worker_init_fn as mmengine_worker_init_fn
from torch.utils.data import DataLoader, Dataset

from promptsg.engine.config import load_config
from promptsg.engine.seeding import reid_worker_init_fn
from promptsg.registry import FUNCTIONS


class Draws(Dataset):
    """Each item: what torch, NumPy and ``random`` draw in the worker that loads it."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, idx: int) -> list[float]:
        return [torch.rand(()).item(), float(np.random.rand()), random.random()]


def _epochs(init_fn, seed: int = 0, epochs: int = 2) -> list[list[float]]:
    torch.manual_seed(seed)
    loader = DataLoader(Draws(), batch_size=2, num_workers=2, worker_init_fn=init_fn)
    return [
        torch.cat([torch.stack(b, 1) for b in loader]).flatten().tolist() for _ in range(epochs)
    ]


def test_workers_draw_anew_each_epoch_and_reproducibly():
    first, second = _epochs(reid_worker_init_fn)
    assert first != second
    assert len({round(v, 12) for v in first}) == len(first)  # workers differ from each other
    assert _epochs(reid_worker_init_fn) == [first, second]
    assert _epochs(reid_worker_init_fn, seed=1)[0] != first
    # mmengine's default repeats the very same draws every epoch.
    repeat = partial(mmengine_worker_init_fn, num_workers=2, rank=0, seed=0)
    a, b = _epochs(repeat)
    assert a == b


def test_it_is_the_training_loaders_default(tiny_config):
    cfg = load_config(str(tiny_config()))
    assert cfg.train_dataloader.worker_init_fn == dict(type='promptsg.reid_worker_init_fn')
    assert FUNCTIONS.get('reid_worker_init_fn') is reid_worker_init_fn


def test_generator_states_round_trip_through_a_safe_checkpoint(tmp_path):
    from promptsg.engine.checkpoint import load_checkpoint_file
    from promptsg.engine.hooks.random_state import get_rng_state, set_rng_state

    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    torch.save({'rng': get_rng_state()}, tmp_path / 'state.pth')
    expected = (torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random())
    set_rng_state(load_checkpoint_file(str(tmp_path / 'state.pth'))['rng'])  # weights_only
    assert (torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random()) == expected


def test_validation_leaves_training_randomness_alone(tmp_path):
    """Training with validation every epoch ends with the same weights as training without it:
    RandomStateHook puts the generators back after each validation epoch."""
    from engine_helpers import make_runner, write_config

    config = write_config(tmp_path)
    weights = []
    for interval in (1, 100):
        options = {'train_cfg.val_interval': interval, 'train_cfg.max_epochs': 3}
        runner = make_runner(config, tmp_path / f'val_every_{interval}', **options)
        runner.train()
        weights.append({k: v.clone() for k, v in runner.model.state_dict().items()})
    assert [k for k in weights[0] if not torch.equal(weights[0][k], weights[1][k])] == []
