"""A trainer SIGKILLed while it writes the epoch-2 (or best) checkpoint keeps the epoch-1 and
best checkpoints: ``--resume`` continues from epoch 1 and ends equal to an uninterrupted run,
and ``tools/test.py WORK_DIR`` still finds one best checkpoint.

The trainer's ``os.fsync`` of the chosen temporary file is slowed (a slow disk), so that the
test, polling the work dir, kills it while that file is being written: every time, not by luck.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from engine_helpers import ROOT, load_tool, subprocess_env, write_config

from promptsg.engine.checkpoint import best_checkpoint, latest_checkpoint, load_checkpoint_file

#: Imported by the killed run: ``os.fsync`` of a file whose name matches $SLOW_SAVE waits.
SLOW_DISK_PLUGIN = """
import os
import re
import time

_fsync, _slow = os.fsync, re.compile(os.environ['SLOW_SAVE'])


def fsync(fd):
    if _slow.fullmatch(os.path.basename(os.readlink(f'/proc/self/fd/{fd}'))):
        time.sleep(120)
    _fsync(fd)


os.fsync = fsync
"""

#: Validation scores rise every epoch, so epoch 2 writes a new best checkpoint.
SCORES = "val_evaluator = dict(type='ScriptedScoreMetric', scores=[0.1, 0.2, 0.3, 0.4])\n"
SCORES += "custom_imports = dict(imports=['engine_helpers'], allow_failed_imports=False)\n"
EPOCHS = 3
TEMPORARIES = {
    'epoch': r'\.epoch_2\.pth\..+\.tmp',
    'best': r'\.best_reid_mAP_epoch_2\.pth\..+\.tmp',
}


def _cmd(config, work_dir, *args) -> list[str]:
    cmd = [sys.executable, str(ROOT / 'tools' / 'train.py'), str(config)]
    return cmd + [
        '--work-dir',
        str(work_dir),
        '--cfg-options',
        f'train_cfg.max_epochs={EPOCHS}',
        *args,
    ]


@pytest.fixture(scope='module')
def whole(tmp_path_factory):
    """An uninterrupted 3-epoch run: (folder with the configs, its work dir)."""
    folder = tmp_path_factory.mktemp('kill_during_save')
    config = write_config(folder, SCORES)
    (folder / 'slow_disk.py').write_text(SLOW_DISK_PLUGIN)
    (folder / 'slow.py').write_text(
        "_base_ = ['./tiny.py']\n"
        "custom_imports = dict(imports=['engine_helpers', 'slow_disk'], "
        'allow_failed_imports=False)\n'
    )
    run = subprocess.run(
        _cmd(config, folder / 'whole'),
        cwd=ROOT,
        env=_env(folder),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return folder, folder / 'whole'


def _env(folder, **extra):
    return subprocess_env(PYTHONPATH=f'{ROOT}:{ROOT / "tests" / "test_engine"}:{folder}', **extra)


def _kill_when_written(folder, work, pattern: str) -> None:
    """Start the slowed trainer; SIGKILL it the moment a file matching ``pattern`` appears."""
    env = _env(folder, SLOW_SAVE=pattern)
    proc = subprocess.Popen(
        _cmd(folder / 'slow.py', work),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if work.is_dir() and any(re.fullmatch(pattern, f.name) for f in work.iterdir()):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL, err[-3000:]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='reads /proc/self/fd')
@pytest.mark.parametrize('during', sorted(TEMPORARIES))
def test_killed_while_saving_epoch_2_resumes_from_epoch_1(whole, during, tmp_path):
    folder, reference = whole
    work = tmp_path / 'killed'
    _kill_when_written(folder, work, TEMPORARIES[during])

    assert latest_checkpoint(str(work)) == str(work / 'epoch_1.pth')
    assert (work / 'epoch_1.pth').is_file()
    assert best_checkpoint(str(work)).endswith('best_reid_mAP_epoch_1.pth')
    metrics = load_tool('test').main(
        [str(folder / 'tiny.py'), str(work), '--work-dir', str(tmp_path / 'test_logs')]
    )
    assert 'reid/mAP' in metrics

    resumed = subprocess.run(
        _cmd(folder / 'tiny.py', work, '--resume'),
        cwd=ROOT,
        env=_env(folder),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'starting afresh' not in resumed.stderr + resumed.stdout
    assert not [f.name for f in work.iterdir() if f.name.endswith('.tmp')]
    assert sorted(p.name for p in work.glob('*.pth')) == sorted(
        p.name for p in reference.glob('*.pth')
    )
    a = load_checkpoint_file(str(reference / f'epoch_{EPOCHS}.pth'))['state_dict']
    b = load_checkpoint_file(str(work / f'epoch_{EPOCHS}.pth'))['state_dict']
    assert [k for k in a if not torch.equal(a[k], b[k])] == []  # bit-identical weights
    final = json.loads((reference / 'test_metrics.json').read_text())
    assert json.loads((work / 'test_metrics.json').read_text()) == final
    assert best_checkpoint(str(work)) == str(work / f'best_reid_mAP_epoch_{EPOCHS}.pth')
