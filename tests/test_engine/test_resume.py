"""Deterministic resume: a run SIGKILLed in the middle of an epoch and resumed with --resume
ends with the same weights and metrics as an uninterrupted run (fixed seed, CPU), in one
process and in two (gloo) with the ranks seeded apart."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import torch
from engine_helpers import ROOT, dist_train, scalars, subprocess_env, write_config

from promptsg.engine.checkpoint import load_checkpoint_file

#: A third-party hook, imported by the run through custom_imports: SIGKILL after iteration N.
KILL_PLUGIN = """
import os
import signal

from mmengine.hooks import Hook

from promptsg.registry import HOOKS


@HOOKS.register_module()
class KillAfterIter(Hook):
    def __init__(self, at_iter):
        self.at_iter = at_iter

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at_iter:
            os.kill(os.getpid(), signal.SIGKILL)
"""

#: 3 epochs of 2 iterations; iteration 5 is the first of epoch 3.
EPOCHS, KILL_AT = 3, 5


def _train(config, work_dir, *args, env) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        str(ROOT / 'tools' / 'train.py'),
        str(config),
        '--work-dir',
        str(work_dir),
    ]
    cmd += ['--cfg-options', f'train_cfg.max_epochs={EPOCHS}', *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _val_scores(work_dir) -> list[tuple[int, float]]:
    return [(r['step'], r['reid/mAP']) for r in scalars(work_dir) if 'reid/mAP' in r]


@pytest.mark.slow
def test_killed_mid_epoch_and_resumed_equals_uninterrupted(tmp_path):
    config = write_config(tmp_path)
    killed = tmp_path / 'killed.py'
    killed.write_text(
        "_base_ = ['./tiny.py']\n"
        "custom_imports = dict(imports=['kill_after_iter'], allow_failed_imports=False)\n"
        f"custom_hooks = [dict(type='KillAfterIter', at_iter={KILL_AT})]\n"
    )
    (tmp_path / 'kill_after_iter.py').write_text(KILL_PLUGIN)
    env = subprocess_env(PYTHONPATH=f'{ROOT}:{tmp_path}')

    whole = _train(config, tmp_path / 'whole', env=env)
    assert whole.returncode == 0, whole.stderr[-3000:]

    work = tmp_path / 'interrupted'
    crash = _train(killed, work, env=env)
    assert crash.returncode == -signal.SIGKILL, crash.stderr[-3000:]
    assert (work / 'epoch_2.pth').is_file() and not (work / 'epoch_3.pth').exists()
    assert not (work / 'test_metrics.json').exists()

    resumed = _train(config, work, '--resume', env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    runs = sorted(work.glob('*/vis_data/scalars.json'))
    assert len(runs) == 2
    epochs = {json.loads(line).get('epoch') for line in runs[1].read_text().splitlines()}
    assert epochs - {None} == {EPOCHS}  # the resumed run trained epoch 3 only

    a = load_checkpoint_file(str(tmp_path / 'whole' / f'epoch_{EPOCHS}.pth'))['state_dict']
    b = load_checkpoint_file(str(work / f'epoch_{EPOCHS}.pth'))['state_dict']
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []  # bit-identical weights
    assert _val_scores(work)[-1] == _val_scores(tmp_path / 'whole')[-1]
    assert sorted(p.name for p in work.glob('best_*.pth')) == sorted(
        p.name for p in (tmp_path / 'whole').glob('best_*.pth')
    )
    final = json.loads((tmp_path / 'whole' / 'test_metrics.json').read_text())
    assert json.loads((work / 'test_metrics.json').read_text()) == final


def _dist_train(config, work_dir, *args, env) -> subprocess.CompletedProcess:
    return dist_train(
        config, work_dir, '--cfg-options', f'train_cfg.max_epochs={EPOCHS}', *args, env=env
    )


@pytest.mark.slow
@pytest.mark.dist
def test_two_process_resume_restores_each_ranks_generators(tmp_path):
    """With ``diff_rank_seed`` every rank draws its own augmentations and dropout, so a resumed
    run equals the uninterrupted one only if each rank gets its own generator states back."""
    # 16 ids x 4 images: 4 P x K batches per epoch, 2 per rank; iteration 5 opens epoch 3
    extra = 'randomness = dict(seed=0, diff_rank_seed=True)\n'
    config = write_config(tmp_path, extra=extra, num_train_ids=16)
    killed = tmp_path / 'killed.py'
    killed.write_text(
        "_base_ = ['./tiny.py']\n"
        "custom_imports = dict(imports=['kill_after_iter'], allow_failed_imports=False)\n"
        f"custom_hooks = [dict(type='KillAfterIter', at_iter={KILL_AT})]\n"
    )
    (tmp_path / 'kill_after_iter.py').write_text(KILL_PLUGIN)
    env = subprocess_env(PYTHONPATH=f'{ROOT}:{tmp_path}')

    whole = _dist_train(config, tmp_path / 'whole', '--no-test', env=env)
    assert whole.returncode == 0, (whole.stdout + whole.stderr)[-3000:]
    work = tmp_path / 'interrupted'
    crash = _dist_train(killed, work, '--no-test', env=env)
    assert crash.returncode != 0
    assert (work / 'epoch_2.pth').is_file() and not (work / 'epoch_3.pth').exists()
    runtime = load_checkpoint_file(str(work / 'epoch_2.pth'))['message_hub']['runtime_info']
    states = [s['torch'] for s in runtime['rng_state_per_rank']]
    assert len(states) == 2 and not torch.equal(*states)  # the ranks' generators differ

    resumed = _dist_train(config, work, '--resume', '--no-test', env=env)
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    a = load_checkpoint_file(str(tmp_path / 'whole' / f'epoch_{EPOCHS}.pth'))['state_dict']
    b = load_checkpoint_file(str(work / f'epoch_{EPOCHS}.pth'))['state_dict']
    assert [k for k in a if not torch.equal(a[k], b[k])] == []  # bit-identical weights
