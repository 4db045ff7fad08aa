"""bench/compare_methods.py trains the three methods on the real mini set and prints one table
(the smallest budget; figures are printed, never asserted)."""

from __future__ import annotations

import json

import pytest
import torch

from bench import compare_methods


@pytest.mark.slow
def test_compare_methods_prints_one_table(shared_data, tmp_path, capsys):
    root = shared_data / 'cuhk03_mini'
    if not root.is_dir():
        pytest.skip('cuhk03_mini is absent')
    threads = torch.get_num_threads()
    out = tmp_path / 'rows.json'
    try:
        rows = compare_methods.main(
            ['--epochs', '1', '--prompt-epochs', '1', '--data-root', str(root), '--json', str(out)]
        )
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    methods = [r['method'] for r in rows]
    assert methods == [
        'baseline',
        'clip_reid (stage 1: prompts)',
        'clip_reid (stage 2: image)',
        'promptsg',
    ]
    for header in ('Rank-1', 'mAP', 's / epoch', 'params trained'):
        assert header in printed
    prompt, image = rows[1], rows[2]
    assert prompt['rank1'] is None and 0 <= image['rank1'] <= 100
    # stage 1 trains only the identity tokens: 40 training ids x 4 tokens x 64 (tiny width)
    assert prompt['params_trained'] == 40 * 4 * 64
    # the baseline's parts plus the official second branch: its classifier (40 ids x 64) and
    # BN scale (64); CLIP-ReID freezes both BN shifts, where the baseline trains one (64)
    assert image['params_trained'] == rows[0]['params_trained'] + 40 * 64
    assert json.loads(out.read_text())['rows'] == rows
