"""The best checkpoint (by the validation metric) is what the end of training and tools/test.py
evaluate, never silently the last one."""

from __future__ import annotations

import json

import pytest
import torch
from engine_helpers import load_tool, make_runner, unique_name

from promptsg.engine.checkpoint import load_checkpoint_file
from promptsg.engine.runner import test_best_checkpoint as evaluate_best
from promptsg.errors import CheckpointError, ConfigError

#: Validation scores: epoch 2 is the best, epoch 3 (the last) is worse.
SCORES = [10.0, 30.0, 20.0]


def _options(**extra) -> dict:
    return {
        'val_evaluator': dict(type='ScriptedScoreMetric', scores=SCORES),
        'train_cfg.max_epochs': 3,
        **extra,
    }


def test_end_of_training_and_test_tool_evaluate_the_best(tiny_config, tmp_path):
    config, work = tiny_config(), tmp_path / 'work'
    runner = make_runner(config, work, **_options())
    runner.train()
    best = work / 'best_reid_mAP_epoch_2.pth'
    assert best.is_file() and (work / 'epoch_3.pth').is_file()
    metrics = evaluate_best(runner)

    tested = runner.model.state_dict()
    best_weights = load_checkpoint_file(str(best))['state_dict']
    last_weights = load_checkpoint_file(str(work / 'epoch_3.pth'))['state_dict']
    assert all(torch.equal(tested[k], best_weights[k]) for k in best_weights)
    assert any(not torch.equal(tested[k], last_weights[k]) for k in last_weights)

    test = load_tool('test')
    name = f'experiment_name={unique_name()}'
    from_dir = test.main(
        [str(config), str(work), '--work-dir', str(tmp_path / 'd'), '--cfg-options', name]
    )
    name = f'experiment_name={unique_name()}'
    from_file = test.main(
        [str(config), str(best), '--work-dir', str(tmp_path / 'f'), '--cfg-options', name]
    )
    assert from_dir == from_file == metrics
    assert json.loads((tmp_path / 'd' / 'test_metrics.json').read_text()) == pytest.approx(
        {k: float(v) for k, v in metrics.items()}
    )


def test_test_tool_refuses_a_work_dir_without_a_best_checkpoint(tiny_config, tmp_path):
    config, work = tiny_config(), tmp_path / 'work'
    runner = make_runner(
        config,
        work,
        **_options(
            **{'default_hooks.checkpoint.save_best': None, 'default_hooks.early_stopping': None}
        ),
    )
    runner.train()
    assert (work / 'epoch_3.pth').is_file() and not list(work.glob('best_*.pth'))
    with pytest.raises(CheckpointError, match=r'no best checkpoint.*epoch_3\.pth'):
        load_tool('test').main([str(config), str(work)])
    evaluate_best(runner)  # no best kept: the final weights are tested, with a warning
    log = next(work.glob('*/*.log')).read_text()
    assert 'testing the FINAL weights' in log


def test_unknown_save_best_key_is_a_config_error(tiny_config, tmp_path):
    options = _options(
        **{'default_hooks.checkpoint.save_best': 'reid/top1', 'default_hooks.early_stopping': None}
    )
    runner = make_runner(tiny_config(), tmp_path / 'work', **options)
    with pytest.raises(ConfigError, match=r"save_best \['reid/top1'\].*reid/mAP"):
        runner.train()
