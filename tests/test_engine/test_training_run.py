"""Through the Runner: the non-finite guard under both policies, AMP (--amp), gradient
accumulation, the logs (every loss term, each group's lr, balancing weights), the test-time
progress bar and the optional TensorBoard backend."""

from __future__ import annotations

import importlib.util
import io

import pytest
import torch
from engine_helpers import load_tool, make_runner, scalars, unique_name
from mmengine.config import Config
from mmengine.hooks import Hook

from promptsg.engine.checkpoint import load_checkpoint_file
from promptsg.engine.cli import run_cli
from promptsg.engine.hooks.progress import FeatureProgressHook
from promptsg.engine.optimizers import NonFiniteLossError
from promptsg.errors import MissingDependencyError
from promptsg.optional import check_vis_backends


def probe(nan_at: list[int]):
    """Config edit: add the ``loss_probe`` term that is NaN at the given training calls."""

    def edit(cfg):
        cfg.model.losses.probe = dict(type='NaNProbeLoss', nan_at=nan_at, inputs=('feat', 'pid'))

    return edit


class WatchIter(Hook):
    """Snapshot the weights around one training iteration."""

    def __init__(self, at_iter: int) -> None:
        self.at_iter, self.before, self.after = at_iter, None, None

    def _weights(self, runner):
        return {n: p.detach().clone() for n, p in runner.model.named_parameters()}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.at_iter:
            self.before = self._weights(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter == self.at_iter:
            self.after = self._weights(runner)


def test_skip_policy_skips_the_bad_iteration_and_trains_on(tiny_config, tmp_path):
    work = tmp_path / 'work'
    runner = make_runner(
        tiny_config(), work, edit=probe([1]), **{'optim_wrapper.nonfinite': 'skip'}
    )
    watch, after_bad = WatchIter(1), WatchIter(2)
    runner.register_hook(watch)
    runner.register_hook(after_bad)
    runner.train()
    assert all(torch.equal(watch.before[n], watch.after[n]) for n in watch.before)  # skipped
    assert any(not torch.equal(after_bad.before[n], after_bad.after[n]) for n in after_bad.before)
    records = [r for r in scalars(work) if 'nonfinite_skips' in r]
    assert [r['nonfinite_skips'] for r in records] == [0, 1, 1, 1]
    assert runner.optim_wrapper.nonfinite_skips == 1
    log = next(work.glob('*/*.log')).read_text()
    assert 'skipped the update: non-finite value in loss_probe at epoch 1, iter 2' in log
    final = load_checkpoint_file(str(work / 'epoch_2.pth'))['state_dict']
    assert all(torch.isfinite(v).all() for v in final.values() if v.is_floating_point())


def test_stop_policy_stops_with_one_line_and_keeps_the_last_good_checkpoint(
    tiny_config, tmp_path, capsys
):
    work = tmp_path / 'work'
    config = tiny_config()
    runner = make_runner(config, work, edit=probe([2]), **{'optim_wrapper.nonfinite': 'stop'})
    with pytest.raises(NonFiniteLossError, match=r'loss_probe at epoch 2, iter 3.*epoch_1\.pth'):
        runner.train()
    assert (work / 'epoch_1.pth').is_file() and not (work / 'epoch_2.pth').exists()
    kept = load_checkpoint_file(str(work / 'epoch_1.pth'))['state_dict']
    assert all(torch.isfinite(v).all() for v in kept.values() if v.is_floating_point())

    child = tmp_path / 'nan_first.py'
    child.write_text(
        "_base_ = ['./tiny.py']\n"
        "probe = dict(type='NaNProbeLoss', nan_at=[0], inputs=('feat', 'pid'))\n"
        'model = dict(losses=dict(probe=probe))\n'
        "optim_wrapper = dict(nonfinite='stop')\n"
    )
    argv = [
        str(child),
        '--work-dir',
        str(tmp_path / 'cli'),
        '--cfg-options',
        f'experiment_name={unique_name()}',
    ]
    train = load_tool('train')
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        run_cli(lambda: train.main(argv))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: training stopped: non-finite value in loss_probe at epoch 1')
    assert err.endswith('no checkpoint was written yet') and '\n' not in err


def test_amp_flag_trains_under_autocast(tiny_config, tmp_path):
    work = tmp_path / 'work'
    load_tool('train').main(
        [
            str(tiny_config()),
            '--work-dir',
            str(work),
            '--amp',
            '--no-test',
            '--cfg-options',
            'train_cfg.max_epochs=1',
            f'experiment_name={unique_name()}',
        ]
    )
    dumped = Config.fromfile(str(work / 'tiny.py'))
    assert dumped.optim_wrapper.dtype == 'bfloat16'
    assert all(r['loss'] == r['loss'] for r in scalars(work) if 'loss' in r)  # finite

    runner = make_runner(
        tiny_config(),
        tmp_path / 'fp16',
        **{
            'optim_wrapper.dtype': 'float16',
            'train_cfg.max_epochs': 1,
            'optim_wrapper.loss_scale': dict(init_scale=256.0),
        },
    )
    seen = []
    runner.model.backbone.visual.register_forward_hook(
        lambda m, i, o: seen.append(o[0].dtype if isinstance(o, tuple) else o.dtype)
    )
    runner.train()
    assert torch.float16 in seen  # training forward passes ran in float16


def test_gradient_accumulation_steps_every_second_iteration(tiny_config, tmp_path):
    runner = make_runner(
        tiny_config(),
        tmp_path / 'work',
        **{
            'optim_wrapper.accumulative_counts': 2,
            'train_cfg.max_epochs': 2,
            'val_dataloader': None,
            'val_cfg': None,
            'val_evaluator': None,
        },
    )
    runner.train()  # 4 iterations
    param = runner.model.head.fc.weight
    assert int(runner.optim_wrapper.optimizer.state[param]['step']) == 2


def test_logs_every_term_each_group_lr_and_balancing_weights(tiny_config, tmp_path):
    work = tmp_path / 'work'
    runner = make_runner(
        tiny_config(),
        work,
        **{
            'model.loss_balancer': dict(
                type='UncertaintyWeighting', terms=['loss_ce', 'loss_supcon']
            ),
            'train_cfg.max_epochs': 1,
        },
    )
    runner.train()
    record = next(r for r in scalars(work) if 'loss' in r)
    for key in (
        'loss_ce',
        'loss_triplet',
        'loss_supcon',
        'loss_uncertainty_reg',
        'weight_ce',
        'weight_supcon',
        'lr_clip_visual',
        'lr_modules',
        'grad_norm',
        'nonfinite_skips',
    ):
        assert key in record, key
    assert record['lr_clip_visual'] == 1e-3 and record['lr_modules'] == 2e-3
    assert any('reid/mAP' in r for r in scalars(work))


def test_progress_bar_during_test_feature_extraction(tiny_config, tmp_path):
    runner = make_runner(tiny_config(), tmp_path / 'work')
    out = io.StringIO()
    runner.register_hook(FeatureProgressHook(file=out, disable=False))
    runner.test()
    text = out.getvalue()
    assert 'test features' in text and '2/2' in text  # 16 test images, batches of 8


def test_tensorboard_flag(tiny_config, tmp_path):
    train = load_tool('train')
    cfg = Config.fromfile(str(tiny_config()))
    train.add_tensorboard(cfg)
    types = [b['type'] for b in cfg.visualizer.vis_backends]
    assert types == ['LocalVisBackend', 'TensorboardVisBackend']
    if importlib.util.find_spec('tensorboard') is None:  # then the run stops before any work
        with pytest.raises(MissingDependencyError, match='pip install tensorboard'):
            check_vis_backends(cfg)
