"""One run per work dir: a lock naming its holder, a stale lock taken over, no silent re-run
over a finished run (``--resume`` or ``--overwrite``), a writable folder checked first, a failed
save as one line that keeps the previous checkpoint, and default work dirs unique per config."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import pytest
from engine_helpers import ROOT, make_runner, subprocess_env

from promptsg.engine import fileio
from promptsg.engine.checkpoint import best_checkpoint
from promptsg.engine.runner import default_work_dir
from promptsg.engine.workdir import LOCK_FILE, WorkDirLock, check_writable, claim_work_dir
from promptsg.errors import CheckpointError, WorkDirError


def test_default_work_dirs_mirror_the_path_under_configs():
    assert default_work_dir('configs/vit_b16/v6.py') == os.path.join('work_dirs', 'vit_b16', 'v6')
    assert default_work_dir('configs/rn50/v6.py') == os.path.join('work_dirs', 'rn50', 'v6')
    assert default_work_dir(str(ROOT / 'configs' / 'quickstart' / 'x.py')) == os.path.join(
        'work_dirs', 'quickstart', 'x'
    )
    assert default_work_dir('/elsewhere/tiny.py') == os.path.join('work_dirs', 'tiny')


def test_a_second_run_on_a_locked_work_dir_is_refused_naming_the_holder(tmp_path):
    held = WorkDirLock(str(tmp_path)).acquire()
    try:
        with pytest.raises(WorkDirError, match=rf'in use by another run \(pid {os.getpid()} on '):
            WorkDirLock(str(tmp_path)).acquire()
    finally:
        held.release()
    assert not (tmp_path / LOCK_FILE).exists()
    WorkDirLock(str(tmp_path)).acquire().release()  # free again


def test_a_lock_held_by_another_live_process_is_refused(tmp_path):
    code = (
        'import sys, time\n'
        'from promptsg.engine.workdir import WorkDirLock\n'
        f'WorkDirLock({str(tmp_path)!r}).acquire()\n'
        "print('locked', flush=True)\n"
        'time.sleep(60)\n'
    )
    proc = subprocess.Popen(
        [sys.executable, '-c', code], env=subprocess_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == 'locked'
        with pytest.raises(WorkDirError, match=f'pid {proc.pid} on '):
            WorkDirLock(str(tmp_path)).acquire()
    finally:
        proc.kill()
        proc.wait()
    # the holder died without releasing: its lock is stale and is taken over
    assert json.loads((tmp_path / LOCK_FILE).read_text())['pid'] == proc.pid
    lock = WorkDirLock(str(tmp_path)).acquire()
    assert json.loads((tmp_path / LOCK_FILE).read_text())['pid'] == os.getpid()
    lock.release()


def test_a_work_dir_with_a_run_needs_resume_or_overwrite(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'epoch_2.pth').write_bytes(b'old')
    (work / 'test_metrics.json').write_text('{}')
    refused = claim_work_dir(str(work))
    with pytest.raises(WorkDirError, match='holds a previous run .*--resume.*--overwrite'):
        refused.__enter__()
    with claim_work_dir(str(work), resume=True):
        assert (work / 'epoch_2.pth').is_file()
    with claim_work_dir(str(work), overwrite=True):
        assert sorted(os.listdir(work)) == [LOCK_FILE]
    (aside,) = tmp_path.glob('work.prev-*')
    assert (aside / 'epoch_2.pth').read_bytes() == b'old'  # moved, not lost
    assert sorted(os.listdir(work)) == []


def test_an_unwritable_work_dir_is_refused_before_training(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('not a folder')
    with pytest.raises(WorkDirError, match='is not writable'):
        check_writable(str(blocker / 'work'))


def test_train_tool_refuses_a_finished_work_dir_in_one_line(tiny_config, tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'best_reid_mAP_epoch_1.pth').write_bytes(b'old')
    run = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'train.py'), str(tiny_config())]
        + ['--work-dir', str(work)],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert lines[-1].startswith('error: work dir ') and '--overwrite' in lines[-1]
    assert 'Traceback' not in run.stderr
    assert sorted(os.listdir(work)) == ['best_reid_mAP_epoch_1.pth']  # nothing written there


def test_a_failed_save_names_the_file_and_free_space_and_keeps_the_previous(
    tiny_config, tmp_path, monkeypatch
):
    """Disk full while epoch 2 is written: one CheckpointError, epoch 1 and its best stay."""
    work = tmp_path / 'work'
    fsync = os.fsync

    def full_disk(fd):
        if '.epoch_2.pth.' in os.readlink(f'/proc/self/fd/{fd}'):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        fsync(fd)

    monkeypatch.setattr(fileio.os, 'fsync', full_disk)
    runner = make_runner(tiny_config(), work)
    with pytest.raises(CheckpointError) as info:
        runner.train()
    message = str(info.value)
    assert f'cannot write checkpoint {work / "epoch_2.pth"}: No space left on device' in message
    assert 'MiB free' in message and 'epoch_1.pth' in message
    names = sorted(os.listdir(work))
    assert 'epoch_1.pth' in names and 'epoch_2.pth' not in names
    assert not [n for n in names if n.endswith('.tmp')]
    assert (work / 'last_checkpoint').read_text().endswith('epoch_1.pth')

    assert os.path.isfile(best_checkpoint(str(work)))
