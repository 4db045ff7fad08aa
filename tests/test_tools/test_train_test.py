"""tools/train.py and tools/test.py end to end on tiny synthetic data: train, resume, test, and
user mistakes reported as one ``error:`` line with exit status 2."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from promptsg.engine.checkpoint import load_checkpoint_file
from promptsg.engine.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / 'tools' / 'train.py'
TEST = ROOT / 'tools' / 'test.py'
QUICKSTART = ROOT / 'configs' / 'quickstart' / 'synthetic_promptsg.py'
SUMMARY = re.compile(r'^Rank-1 \d+\.\d+ .*mAP \d+\.\d+$', re.MULTILINE)
METRIC_KEYS = {'reid/rank1', 'reid/rank5', 'reid/rank10', 'reid/mAP', 'reid/mINP'}

#: 8 training ids × 4 images (two P×K batches of 16), 4 test ids, validation every epoch.
TINY = [
    'model.num_classes=8',
    'train_dataloader.batch_size=16',
    'train_cfg.val_interval=1',
    'default_hooks.checkpoint.interval=1',
    'default_hooks.logger.interval=1',
] + [
    f'{split}_dataloader.dataset.{key}={value}'
    for split in ('train', 'val', 'test')
    for key, value in (('num_train_ids', 8), ('num_test_ids', 4), ('images_per_id', 4))
]


def run(script: Path, *args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def train(
    work_dir: Path, *extra: str, options: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    return run(
        TRAIN,
        str(QUICKSTART),
        '--work-dir',
        str(work_dir),
        *extra,
        '--cfg-options',
        *TINY,
        *options,
        cwd=work_dir.parent,
    )


def logs(work_dir: Path) -> list[str]:
    """Text of each run's log in the work dir, oldest first."""
    return [p.read_text() for p in sorted(work_dir.glob('*/*.log'))]


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return proc.stdout


@pytest.fixture(scope='module')
def vit_run(tmp_path_factory) -> dict:
    """Train one epoch, stop, resume to two epochs (which tests the best checkpoint)."""
    work_dir = tmp_path_factory.mktemp('vit') / 'work'
    first = train(work_dir, '--no-test', options=('train_cfg.max_epochs=1',))
    files = sorted(p.name for p in work_dir.glob('*.pth'))
    epoch_1 = work_dir / 'epoch_1.pth'
    checkpoint = load_checkpoint_file(str(epoch_1), 'cpu') if epoch_1.is_file() else {}
    resumed = train(work_dir, '--resume', options=('train_cfg.max_epochs=2',))
    return dict(work_dir=work_dir, first=first, files=files, checkpoint=checkpoint, resumed=resumed)


@pytest.mark.slow
def test_first_run_trains_one_epoch_and_checkpoints(vit_run):
    ok(vit_run['first'])
    files = vit_run['files']
    assert 'epoch_1.pth' in files
    assert len([f for f in files if f.startswith('best_')]) == 1
    log = logs(vit_run['work_dir'])[0]
    assert 'Epoch(train) [1][2/2]' in log and 'Epoch(train) [2]' not in log
    assert 'Epoch(val) [1]' in log
    checkpoint = vit_run['checkpoint']
    assert checkpoint['meta']['epoch'] == 1
    assert {'state_dict', 'optimizer', 'message_hub', 'param_schedulers'} <= set(checkpoint)


@pytest.mark.slow
def test_resume_continues_from_epoch_1(vit_run):
    out = ok(vit_run['resumed'])
    first_log, resumed_log = logs(vit_run['work_dir'])
    assert 'resumed epoch: 1, iter: 2' in resumed_log
    assert 'Epoch(train) [1]' not in resumed_log
    assert 'Epoch(train) [2][2/2]' in resumed_log
    assert 'Epoch(val) [2]' in resumed_log
    assert (vit_run['work_dir'] / 'epoch_2.pth').is_file()
    assert SUMMARY.search(out), out[-1000:]


@pytest.mark.slow
def test_metrics_written_and_reproduced_by_tools_test(vit_run):
    ok(vit_run['resumed'])
    work_dir = vit_run['work_dir']
    trained = json.loads((work_dir / 'test_metrics.json').read_text())
    assert set(trained) >= METRIC_KEYS
    assert all(0 <= trained[k] <= 100 for k in METRIC_KEYS)
    (best,) = work_dir.glob('best_*.pth')
    test_dir = work_dir.parent / 'test'
    proc = run(
        TEST,
        str(QUICKSTART),
        str(best),
        '--work-dir',
        str(test_dir),
        '--cfg-options',
        *TINY,
        cwd=work_dir.parent,
    )
    out = ok(proc)
    (line,) = SUMMARY.findall(out)
    tested = json.loads((test_dir / 'test_metrics.json').read_text())
    assert set(tested) == set(trained)
    for key in trained:
        assert tested[key] == pytest.approx(trained[key], abs=1e-6), key
    assert f'mAP {tested["reid/mAP"]:.2f}' in line
    assert f'Rank-1 {tested["reid/rank1"]:.2f}' in line


@pytest.mark.slow
def test_tiny_rn50_trains_and_tests(tmp_path):
    work_dir = tmp_path / 'rn50'
    proc = train(
        work_dir,
        options=(
            'train_cfg.max_epochs=1',
            'model.backbone.type=CLIPResNet',
            'model.backbone.arch=tiny-rn',
        ),
    )
    out = ok(proc)
    assert SUMMARY.search(out)
    assert 'CLIPResNet' in (work_dir / QUICKSTART.name).read_text()
    metrics = json.loads((work_dir / 'test_metrics.json').read_text())
    assert set(metrics) >= METRIC_KEYS
    (log,) = logs(work_dir)
    losses = re.findall(r'Epoch\(train\) \[1\]\[2/2\].*?loss: (\S+)', log)
    assert losses and float(losses[0]) > 0


def _evil_checkpoint(path: Path) -> Path:
    """A checkpoint that would create a file if unpickled without the safe loader."""

    class Payload:
        def __reduce__(self):
            return open, (str(path.with_suffix('.ran')), 'w')

    torch.save({'state_dict': {}, 'meta': {'payload': Payload()}}, path)
    return path


#: (tool, extra arguments, --cfg-options, words the one error line must contain)
MISTAKES = {
    'missing_data_root': (
        TRAIN,
        (),
        ('train_dataloader.dataset.data_root=/nonexistent/data',),
        ('data_root', '/nonexistent/data'),
    ),
    'unknown_component': (
        TRAIN,
        (),
        ('model.head.type=LinearClasifier',),
        ("unknown head 'LinearClasifier'", 'LinearClassifier'),
    ),
    'bad_pretrained_path': (
        TRAIN,
        (),
        ('model.backbone.pretrained=/nonexistent/clip.pt',),
        ('/nonexistent/clip.pt',),
    ),
    'image_size_the_backbone_cannot_take': (
        TRAIN,
        (),
        ('model.backbone.img_size=(100,50)',),
        ('img_size (100, 50)', 'multiple of 32'),
    ),
    'unknown_cfg_options_key': (
        TRAIN,
        (),
        ('train_cfg.max_epoch=2',),
        ("'train_cfg.max_epoch'", 'max_epochs'),
    ),
    'unsafe_checkpoint': (TEST, ('EVIL',), (), ('not allow-listed',)),
}


@pytest.fixture(scope='module')
def mistakes(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Run every mistake at once (they fail early; running them side by side saves time)."""
    root = tmp_path_factory.mktemp('mistakes')
    evil = _evil_checkpoint(root / 'evil.pth')
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    procs = {}
    for name, (tool, args, options, _) in MISTAKES.items():
        args = [str(evil) if a == 'EVIL' else a for a in args]
        cmd = [sys.executable, str(tool), str(QUICKSTART), *args, '--work-dir', str(root / name)]
        cmd += ['--cfg-options', *TINY, *options]
        procs[name] = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    results = {}
    try:
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=300)
            results[name] = (
                subprocess.CompletedProcess(proc.args, proc.returncode, out, err),
                evil,
            )
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    return results


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(MISTAKES))
def test_user_mistake_is_one_error_line_and_exit_2(mistakes, name):
    proc, evil = mistakes[name]
    words = MISTAKES[name][3]
    assert 'Traceback' not in proc.stderr + proc.stdout, proc.stderr[-2000:]
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(error_lines) == 1, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == error_lines[0]
    if MISTAKES[name][0] is TRAIN:
        assert proc.stderr.strip() == error_lines[0]  # nothing else on stderr
    for word in words:
        assert word in error_lines[0], error_lines[0]
    assert not evil.with_suffix('.ran').exists()
    assert proc.returncode == 2, error_lines[0]


def _tool_main(script: Path):
    spec = importlib.util.spec_from_file_location(f'tool_{script.stem}', script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_tools_test_missing_checkpoint_in_process(capsys):
    """The same path without a new process: ``run_cli`` prints one line and exits 2."""
    main = _tool_main(TEST)
    with pytest.raises(SystemExit) as info:
        run_cli(lambda: main([str(QUICKSTART), '/nonexistent/best.pth']))
    err = capsys.readouterr().err
    message = err.strip() or str(info.value.code)
    assert message == 'error: checkpoint not found: /nonexistent/best.pth'
    assert info.value.code == 2


def test_run_cli_passes_real_bugs_through():
    def broken():
        raise ZeroDivisionError('a bug, not a user mistake')

    with pytest.raises(ZeroDivisionError):
        run_cli(broken)


def test_run_cli_reports_an_unknown_component_argument(capsys):
    def build():
        from promptsg.registry import HEADS

        HEADS.build(dict(type='LinearClassifier', in_channels=4, num_classes=2, bias_x=True))

    with pytest.raises(SystemExit) as info:
        run_cli(build)
    message = capsys.readouterr().err.strip() or str(info.value.code)
    assert message == "error: LinearClassifier has no argument 'bias_x' (check the config)"
    assert info.value.code == 2
