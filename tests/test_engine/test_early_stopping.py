"""ReIDEarlyStoppingHook: stops at the right epoch (patience, min_delta, ties), keeps the best
checkpoint by the same metric, and its counter survives --resume."""

from __future__ import annotations

import math

import pytest
from engine_helpers import make_runner

from promptsg.engine.checkpoint import load_checkpoint_file
from promptsg.engine.hooks.early_stopping import ReIDEarlyStoppingHook
from promptsg.errors import ConfigError

#: Best 25 at epoch 4; 24, 24, 24 after it: with patience 3 the run stops after epoch 7.
SCORES = [10, 20, 20, 25, 24, 24, 24, 30, 31, 32]


def _options(scores, max_epochs=10, **stopper) -> dict:
    options = {
        'val_evaluator': dict(type='ScriptedScoreMetric', scores=scores),
        'train_cfg.max_epochs': max_epochs,
        'default_hooks.checkpoint.max_keep_ckpts': -1,
    }
    options.update({f'default_hooks.early_stopping.{k}': v for k, v in stopper.items()})
    return options


@pytest.fixture
def config(tiny_config):
    return tiny_config(num_train_ids=4)  # one P x K batch per epoch


@pytest.mark.parametrize(
    'scores, stopper, stop_epoch, best_epoch',
    [
        (SCORES, dict(patience=3, min_delta=0.0), 7, 4),  # a tie (epoch 3) is no improvement
        # min_delta 1: nothing beats 10 by more than 1, so the run stops after epoch 3;
        # the best checkpoint is still the highest score so far.
        ([10, 10.5, 10.8, 11.2, 12, 13], dict(patience=2, min_delta=1.0), 3, 3),
        ([10, 10.5, 10.8, 11.2, 12, 13], dict(patience=2, min_delta=0.0), 6, 6),
    ],
)
def test_stops_at_the_right_epoch_and_keeps_the_best(
    config, tmp_path, scores, stopper, stop_epoch, best_epoch
):
    work = tmp_path / 'work'
    runner = make_runner(config, work, **_options(scores, max_epochs=len(scores), **stopper))
    runner.train()
    assert runner.epoch == stop_epoch
    assert max(int(p.stem[6:]) for p in work.glob('epoch_*.pth')) == stop_epoch
    assert [p.name for p in work.glob('best_*.pth')] == [f'best_reid_mAP_epoch_{best_epoch}.pth']


def test_the_counter_survives_resume_and_a_stopped_run_stays_stopped(config, tmp_path):
    work = tmp_path / 'work'
    first = make_runner(config, work, **_options(SCORES, max_epochs=5))
    first.train()  # best 25 at epoch 4, one validation without improvement (epoch 5)
    state = load_checkpoint_file(str(work / 'epoch_5.pth'))['message_hub']['runtime_info']
    assert state['early_stopping'] == {'best_score': 25.0, 'wait_count': 1}

    resumed = make_runner(config, work, resume='auto', **_options(SCORES, max_epochs=10))
    resumed.train()  # epochs 6 and 7 bring the count to 3: stop after epoch 7, not 10
    assert resumed.epoch == 7

    again = make_runner(config, work, resume='auto', **_options(SCORES, max_epochs=10))
    again.train()  # patience already spent: no further epoch
    assert again.epoch == 7
    assert not (work / 'epoch_8.pth').exists()


def test_unknown_monitor_is_a_config_error(config, tmp_path):
    options = _options(SCORES, monitor='reid/rank_1')
    options['default_hooks.checkpoint.save_best'] = 'reid/rank_1'
    runner = make_runner(config, tmp_path / 'work', **options)
    with pytest.raises(ConfigError, match=r"monitor 'reid/rank_1'.*reid/mAP"):
        runner.train()


def test_monitor_and_save_best_must_agree(config, tmp_path):
    with pytest.raises(ConfigError, match='save_best'):
        make_runner(config, tmp_path / 'work', **_options(SCORES, monitor='reid/rank1'))


@pytest.mark.parametrize(
    'kwargs', [dict(patience=0), dict(min_delta=-1), dict(rule='bigger'), dict(monitor='')]
)
def test_bad_arguments_are_config_errors(kwargs):
    with pytest.raises(ConfigError, match='early_stopping'):
        ReIDEarlyStoppingHook(**kwargs)


def test_rule_less_and_non_finite_scores():
    hook = ReIDEarlyStoppingHook(monitor='val/loss', patience=2, min_delta=0.5, rule='less')
    assert hook._check_stop_condition(3.0) == (False, '')
    assert not hook._check_stop_condition(2.6)[0] and hook.wait_count == 1  # 0.4 < min_delta
    assert not hook._check_stop_condition(2.4)[0] and hook.wait_count == 0
    assert hook._check_stop_condition(math.nan)[0]
    assert ReIDEarlyStoppingHook(monitor='reid/mAP').rule == 'greater'
