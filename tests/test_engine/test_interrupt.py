"""Ctrl-C and --resume with changed options: one line saying where the run stopped and how to
continue, and a warning naming the options that the resumed state overrides."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from engine_helpers import ROOT, load_tool, subprocess_env

from promptsg.engine.hooks.checkpoint_meta import resume_overrides
from promptsg.engine.workdir import LOCK_FILE


@pytest.mark.slow
def test_ctrl_c_says_where_the_run_stopped_and_how_to_resume(tiny_config, tmp_path):
    config, work = tiny_config(), tmp_path / 'work'
    cmd = [sys.executable, str(ROOT / 'tools' / 'train.py'), str(config), '--work-dir', str(work)]
    cmd += ['--cfg-options', 'train_cfg.max_epochs=50']
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 200
    while not (work / 'epoch_1.pth').is_file() and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err[-3000:]
    assert 'Traceback' not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith('error: interrupted in epoch ')
    assert f'python tools/train.py {config} --work-dir {work} --resume' in last
    assert 'the last checkpoint is ' in last and '.pth' in last
    assert not (work / LOCK_FILE).exists()  # the lock is released


def test_resume_overrides_names_optimizer_scheduler_and_seed_options():
    checkpoint = {
        'optimizer': {'param_groups': [{'name': 'clip_visual', 'lr': 1e-3}, {'lr': 2e-3}]}
    }
    options = {
        'optim_wrapper.optimizer.lr': 0.5,
        'optim_wrapper.paramwise_cfg.lr_modules': 0.1,
        'param_scheduler.0.end': 3,
        'randomness.seed': 7,
        'train_cfg.max_epochs': 4,  # applies: not listed
    }
    found = resume_overrides(options, checkpoint)
    assert found == [
        'optim_wrapper.optimizer.lr=0.5 by the resumed optimizer state (lr: clip_visual 0.001, 1 0.002)',
        'optim_wrapper.paramwise_cfg.lr_modules=0.1 by the resumed optimizer state '
        '(lr: clip_visual 0.001, 1 0.002)',
        'param_scheduler.0.end=3 by the resumed param scheduler state',
        'randomness.seed=7 by the resumed random generator states',
    ]


@pytest.mark.slow
def test_resume_with_a_changed_lr_warns_that_the_checkpoint_wins(tiny_config, tmp_path, capfd):
    train = load_tool('train')
    config, work = str(tiny_config()), str(tmp_path / 'work')
    train.main([config, '--work-dir', work, '--no-test', '--cfg-options', 'train_cfg.max_epochs=1'])
    capfd.readouterr()
    options = ['train_cfg.max_epochs=2', 'optim_wrapper.optimizer.lr=0.5']
    train.main([config, '--work-dir', work, '--resume', '--no-test', '--cfg-options', *options])
    out = ''.join(capfd.readouterr())
    assert (
        '--resume: the checkpoint overrides --cfg-options optim_wrapper.optimizer.lr=0.5 by ' in out
    )
    assert 'train_cfg.max_epochs' not in out.split('overrides --cfg-options')[1].splitlines()[0]
