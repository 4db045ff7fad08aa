"""The benchmark harness: interleaved timing, figures, the table, options; and the table parser."""

from __future__ import annotations

import argparse

import pytest
import torch
from tabulate import tabulate

from bench.harness import (
    DEFAULT_THREADS,
    add_common_args,
    device_of,
    figure,
    format_table,
    interleaved,
    machine,
    paired_ratio,
    ratio_figure,
    settings,
    spread,
    time_figure,
)
from bench.run_all import column_unit, parse_table, table_figures
from promptsg.errors import ConfigError


@pytest.fixture(autouse=True)
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_interleaved_flips_order_every_round_and_drops_warmup():
    calls = []
    samples = interleaved(
        {'a': lambda: calls.append('a'), 'b': lambda: calls.append('b')},
        repeats=3,
        warmup=1,
        inner=2,
    )
    assert calls == ['a', 'a', 'b', 'b', 'b', 'b', 'a', 'a'] * 2
    assert {k: len(v) for k, v in samples.items()} == {'a': 3, 'b': 3}
    assert all(t >= 0 for v in samples.values() for t in v)


def test_interleaved_times_each_call():
    samples = interleaved({'sleep': lambda: __import__('time').sleep(0.01)}, repeats=2, warmup=0)
    assert all(0.009 < t < 0.5 for t in samples['sleep'])


def test_interleaved_rejects_bad_counts():
    with pytest.raises(ConfigError, match='repeats'):
        interleaved({'a': lambda: None}, repeats=0)


def test_figures_use_medians_and_paired_ratios():
    row = time_figure('b', 'c', 'step', [0.010, 0.030, 0.020], note='n')
    assert row['value'] == pytest.approx(20.0) and row['unit'] == 'ms'
    assert row['note'].startswith('median of 3, IQR') and row['note'].endswith('; n')
    ratios = paired_ratio([2.0, 3.0, 9.0], [1.0, 1.0, 3.0])
    assert ratios == [2.0, 3.0, 3.0]
    assert ratio_figure('b', 'c', 'r', ratios)['value'] == 3.0
    with pytest.raises(ValueError):
        paired_ratio([1.0], [1.0, 2.0])
    assert spread([1.0]).startswith('1 sample')


def test_table_has_every_row_and_escapes_pipes():
    rows = [figure('b', 'case 1', 'speed', 1234.5, 'img/s', '|dmAP| 0'), figure('b', 'c', 'r', 0.5)]
    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0].split('|')[1].strip() == 'bench' and len(lines) == 4
    assert '1234' in lines[2] and '\\|dmAP\\| 0' in lines[2] and '0.5' in lines[3]


def test_settings_take_the_mode_and_command_line_overrides():
    parser = add_common_args(argparse.ArgumentParser())
    parser.add_argument('--repeats', type=int)
    defaults = {m: dict(repeats=i + 1, archs=[m]) for i, m in enumerate(('smoke', 'quick', 'full'))}
    assert settings(parser.parse_args(['--quick']), defaults) == dict(repeats=2, archs=['quick'])
    got = settings(parser.parse_args(['--smoke', '--repeats', '7']), defaults)
    assert got == dict(repeats=7, archs=['smoke'])
    assert settings(parser.parse_args([]), defaults)['archs'] == ['full']


def test_device_of_sets_threads_and_rejects_bad_devices():
    parser = add_common_args(argparse.ArgumentParser())
    assert device_of(parser.parse_args([])) == torch.device('cpu')
    assert torch.get_num_threads() == DEFAULT_THREADS
    with pytest.raises(ConfigError, match='--device'):
        device_of(parser.parse_args(['--device', 'tpu']))
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match='CUDA is not available'):
            device_of(parser.parse_args(['--device', 'cuda']))


def test_machine_names_cores_threads_and_torch():
    desc = machine('cpu', threads=3)
    assert 'cores' in desc and '(3 CPU threads)' in desc and torch.__version__ in desc


def test_foreign_table_becomes_figures():
    rows = [
        ['3368x15913', 'distmat', 'promptsg cmc_map', 1.5, 120.0, '', 42.123, ''],
        ['3368x15913', 'distmat', 'numpy per-query', 9.0, 3.0, 6.0, 42.123, 'ref: 500 queries'],
    ]
    headers = ['Q x G', 'input', 'method', 'seconds', 'peak MB', 'speed-up', 'mAP %', 'note']
    text = 'torch 2, 1 threads\n' + tabulate(rows, headers=headers) + '\n\ntrailing words'
    parsed = parse_table(text)
    assert [r['method'] for r in parsed] == ['promptsg cmc_map', 'numpy per-query']
    figures = table_figures('eval_speed', parsed)
    by_name = {f['figure']: f for f in figures}
    assert by_name['numpy per-query: speed-up']['value'] == 6.0
    assert by_name['numpy per-query: speed-up']['unit'] == 'x'
    assert by_name['promptsg cmc_map: seconds']['case'] == '3368x15913 distmat'
    assert by_name['numpy per-query: mAP %']['note'] == 'ref: 500 queries'
    assert 'promptsg cmc_map: speed-up' not in by_name and len(figures) == 7
    assert parse_table('no table here') == [] and table_figures('x', []) == []


@pytest.mark.parametrize(
    'header, unit',
    [
        ('seconds', 's'),
        ('wall s', 's'),
        ('CPU s', 's'),
        ('peak MB', 'MB'),
        ('speed-up wall', 'x'),
        ('mAP %', '%'),
        ('Q x G', ''),
    ],
)
def test_foreign_column_units(header, unit):
    assert column_unit(header) == unit
