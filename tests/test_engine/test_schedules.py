"""The schedule bases produce the expected lr at every iteration for both parameter groups
(read back from the run's logged ``lr_clip_visual`` / ``lr_modules``), keeping their ratio."""

from __future__ import annotations

import math

import pytest
from engine_helpers import make_runner, scalars

EPOCHS, ITERS = 5, 2  # ITERS: P x K batches per epoch of the tiny run
NO_VAL = {'val_dataloader': None, 'val_cfg': None, 'val_evaluator': None}


def constant(t: int) -> float:
    return 1.0


def warmup_cosine(t: int, start: float = 0.01, floor: float = 1e-3) -> float:
    """mmengine's LinearLR over epoch 0 (reaching 1 at its last iteration), then cosine."""
    if t < ITERS:
        return start + (1 - start) * t / (ITERS - 1)
    span = (EPOCHS - 1) * ITERS
    return floor + (1 - floor) * (1 + math.cos(math.pi * (t - ITERS) / span)) / 2


def multistep(t: int, milestones=(2, 4), gamma: float = 0.1) -> float:
    epoch = t // ITERS
    return gamma ** sum(epoch >= m for m in milestones)


CASES = {
    # schedule file: (lr_clip_visual, lr_modules, factor of global iteration t, extra options)
    'constant.py': (1e-4, 1e-5, constant, {}),
    'warmup_cosine.py': (1e-4, 1e-5, warmup_cosine, {}),
    'multistep.py': (5e-6, 5e-5, multistep, {'param_scheduler.0.milestones': [2, 4]}),
}


@pytest.mark.parametrize('schedule', sorted(CASES))
def test_lr_of_both_groups_at_every_iteration(tiny_config, tmp_path, schedule):
    lr_visual, lr_modules, factor, options = CASES[schedule]
    runner = make_runner(
        tiny_config(schedule=schedule),
        tmp_path / 'work',
        **{'train_cfg.max_epochs': EPOCHS, **NO_VAL, **options},
    )
    runner.train()
    records = [r for r in scalars(tmp_path / 'work') if 'lr_modules' in r]
    assert [r['iter'] for r in records] == list(range(1, EPOCHS * ITERS + 1))
    for t, record in enumerate(records):
        epoch = t // ITERS + 1
        assert record['epoch'] == epoch
        expected = factor(t)
        assert record['lr_clip_visual'] == pytest.approx(lr_visual * expected, rel=1e-6), (t, epoch)
        assert record['lr_modules'] == pytest.approx(lr_modules * expected, rel=1e-6), (t, epoch)
        assert record['lr_clip_visual'] / record['lr_modules'] == pytest.approx(
            lr_visual / lr_modules
        )
    # The optimiser's own groups hold the same values at the end.
    groups = {g['name']: g['lr'] for g in runner.optim_wrapper.optimizer.param_groups}
    last = factor(EPOCHS * ITERS)
    if schedule != 'warmup_cosine.py':  # cosine's end value is reached after the last step
        assert groups['clip_visual'] == pytest.approx(lr_visual * last, rel=1e-6)
