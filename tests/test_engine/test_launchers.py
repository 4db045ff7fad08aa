"""The launcher scripts: what tools/slurm_train.sh hands to srun (Slurm itself cannot run here;
a stand-in ``srun`` records its arguments), and usage errors of both scripts."""

from __future__ import annotations

import os
import subprocess

from engine_helpers import ROOT

FAKE_SRUN = '#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$SRUN_ARGS_FILE"\n'


def test_slurm_script_runs_train_py_with_the_slurm_launcher(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    srun = bin_dir / 'srun'
    srun.write_text(FAKE_SRUN)
    srun.chmod(0o755)
    record = tmp_path / 'args.txt'
    env = dict(
        os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}', SRUN_ARGS_FILE=str(record), GPUS='4'
    )
    proc = subprocess.run(
        [
            'bash',
            str(ROOT / 'tools' / 'slurm_train.sh'),
            'gpu',
            'v6',
            'configs/vit_b16/v6.py',
            'work_dirs/v6',
            '--amp',
            '--cfg-options',
            'train_cfg.max_epochs=1',
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    args = record.read_text().splitlines()
    assert args[:2] == ['-p', 'gpu'] and '--job-name=v6' in args
    assert {'--ntasks=4', '--ntasks-per-node=4', '--gres=gpu:4', '--kill-on-bad-exit=1'} <= set(
        args
    )
    cmd = args[args.index('python') :]
    assert cmd == [
        'python',
        '-u',
        str(ROOT / 'tools' / 'train.py'),
        'configs/vit_b16/v6.py',
        '--work-dir=work_dirs/v6',
        '--launcher=slurm',
        '--amp',
        '--cfg-options',
        'train_cfg.max_epochs=1',
    ]


def test_launchers_print_usage_on_missing_arguments():
    for script, args in (('slurm_train.sh', ['gpu', 'job']), ('dist_train.sh', ['cfg.py'])):
        proc = subprocess.run(
            ['bash', str(ROOT / 'tools' / script), *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 2 and proc.stderr.startswith('usage:'), script
