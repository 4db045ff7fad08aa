"""Each bench script's smallest mode runs and prints its table (timings are never asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import (
    eval_device,
    extract_speed,
    promptsg_vs_baseline,
    run_all,
    train_memory,
    train_overhead,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _check(rows: list[dict], printed: str, names: set[str], json_path: Path) -> None:
    assert names <= {r['figure'] for r in rows}
    assert all(r['value'] == r['value'] and r['value'] >= 0 for r in rows)  # no NaN
    for row in rows:
        assert row['figure'] in printed
    assert 'machine:' in printed and '| bench' in printed
    assert json.loads(json_path.read_text())['figures'] == rows


def test_train_overhead_smoke(tmp_path, capsys):
    out = tmp_path / 'f.json'
    rows = train_overhead.main(['--smoke', '--repeats', '1', '--json', str(out)])
    names = {'Runner iteration', 'hand-written loop iteration', 'overhead Runner / hand loop'}
    _check(rows, capsys.readouterr().out, names, out)
    assert 'ReIDOptimWrapper' in rows[0]['note'] or 'OptimWrapper' in rows[0]['note']


def test_promptsg_vs_baseline_smoke(tmp_path, capsys):
    out = tmp_path / 'f.json'
    rows = promptsg_vs_baseline.main(['--smoke', '--repeats', '1', '--json', str(out)])
    names = {'training PromptSG / baseline', 'inference composed / fixed'}
    _check(rows, capsys.readouterr().out, names, out)


def test_extract_speed_smoke(tmp_path, capsys):
    out = tmp_path / 'f.json'
    rows = extract_speed.main(['--smoke', '--workers', '0', '--json', str(out)])
    names = {
        'tools/test.py extraction',
        'bare encode_image loop',
        'time tools/test.py / bare encode_image loop',
        'data loading, 0 workers',
    }
    _check(rows, capsys.readouterr().out, names, out)
    assert '(36 images)' in rows[0]['case']


def test_eval_device_smoke(tmp_path, capsys):
    out = tmp_path / 'f.json'
    rows = eval_device.main(
        ['--smoke', '--num-query', '50', '--num-gallery', '200', '--json', str(out)]
    )
    _check(rows, capsys.readouterr().out, {'feature_cmc_map on cpu'}, out)


def test_benches_refuse_bad_options():
    with pytest.raises(Exception, match='multiple of K=4'):
        promptsg_vs_baseline.main(['--smoke', '--batch-size', '6'])
    with pytest.raises(Exception, match='data'):
        extract_speed.dataset_cfg('imagenet', (64, 32), 4)


@pytest.mark.slow
def test_train_memory_smoke_runs_a_subprocess(tmp_path, capsys):
    out = tmp_path / 'f.json'
    rows = train_memory.main(['--smoke', '--batch-sizes', '4', '--json', str(out)])
    _check(rows, capsys.readouterr().out, {'peak resident memory, one step'}, out)
    peak, rise = rows[0]['value'], rows[1]['value']
    assert peak > rise > 0


@pytest.mark.slow
def test_gpu_check_dry_run_on_cpu_prints_one_table(tmp_path):
    """bench/gpu_check.sh → run_all.py → one bench process → JSON → one table."""
    out = tmp_path / 'all.json'
    env = dict(os.environ, DEVICE='cpu', ARCHS='tiny-vit', BATCH='8', IMG='64 32', AMP='1')
    env.update(ONLY='promptsg_vs_baseline', MODE='--smoke', PYTHON=sys.executable, JSON=str(out))
    env['CHECKS'] = '0'  # the correctness checks have their own tests below
    done = subprocess.run(
        ['bash', str(ROOT / 'bench' / 'gpu_check.sh')],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'promptsg benchmarks' in done.stdout and 'total wall time' in done.stdout
    lines = done.stdout.splitlines()
    assert sum(line.startswith('| promptsg_vs_baseline') for line in lines) == 6
    assert 'tiny-vit b8 64x32 bf16' in done.stdout
    figures = json.loads(out.read_text())['figures']
    assert {f['bench'] for f in figures} == {'promptsg_vs_baseline', 'run_all'}


def test_gpu_check_without_cuda_says_so_in_one_line_and_exits_cleanly():
    env = dict(os.environ, DEVICE='cuda', PYTHON=sys.executable, CUDA_VISIBLE_DEVICES='')
    done = subprocess.run(
        ['bash', str(ROOT / 'bench' / 'gpu_check.sh')],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == (
        'gpu_check: skipped: no CUDA device on this machine (DEVICE=cpu runs it on the CPU)'
    )
    assert 'Traceback' not in done.stderr


@pytest.mark.slow
def test_gpu_check_steps_run_on_cpu(capsys):
    """The checks' logic on the CPU with a tiny arch: bf16 and fp16 steps, loss dtypes, fixed
    prompt (the Runner resume check is left to the GPU run)."""
    from bench import gpu_check

    argv = ['--device', 'cpu', '--archs', 'tiny-vit', '--batch-size', '8']
    assert gpu_check.main([*argv, '--img-size', '64', '32', '--steps', '3', '--no-resume']) == 0
    out = capsys.readouterr().out
    assert '3/3 checks passed' in out
    assert '| train tiny-vit bfloat16 | ok |' in out and '| train tiny-vit float16 | ok |' in out


def test_run_all_reports_failing_and_hanging_benches(tmp_path, monkeypatch, capsys):
    scripts = {
        'eval_device': 'import sys; sys.exit("boom: bad option")',
        'train_memory': 'import time; time.sleep(30)',
    }
    monkeypatch.setattr(
        run_all, 'own_command', lambda name, args, path: [sys.executable, '-c', scripts[name]]
    )
    out = tmp_path / 'all.json'
    argv = ['--smoke', '--only', 'eval_device', 'train_memory', '--timeout', '2']
    assert run_all.main([*argv, '--json', str(out)]) == 1
    printed = capsys.readouterr().out
    assert 'failed (exit 1): boom: bad option' in printed and 'timed out after 2 s' in printed
    assert 'failed: eval_device, train_memory' in printed
    notes = [f['note'] for f in json.loads(out.read_text())['figures']]
    assert notes[0].startswith('failed') and notes[1].startswith('timed out')
