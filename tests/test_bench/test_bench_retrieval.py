"""bench/rerank_scale.py and bench/index_scale.py run in their smallest mode (no timing asserted)."""

from __future__ import annotations

import json

import pytest

from bench import index_scale, rerank_scale
from promptsg.retrieval import import_faiss


@pytest.mark.slow
def test_rerank_scale_smoke(tmp_path, capsys):
    out = tmp_path / 'rerank.json'
    rows = rerank_scale.main(['--smoke', '--threads', '1', '--json', str(out)])
    printed = capsys.readouterr().out
    assert [(r['method'], r['case']) for r in rows] == [
        ('dense', '40 x 160'), ('sparse', '40 x 160'), ('sparse', '60 x 300')
    ]  # fmt: skip
    assert 'R1/mAP equal' in rows[1]['vs_dense'] and 'max |d - d_dense|' in printed
    assert rows[0]['rank1'] == rows[1]['rank1'] and rows[0]['mAP'] == pytest.approx(rows[1]['mAP'])
    assert json.loads(out.read_text()) == rows


@pytest.mark.slow
def test_index_scale_smoke(tmp_path, capsys):
    out = tmp_path / 'index.json'
    rows = index_scale.main(['--smoke', '--singles', '3', '--json', str(out)])
    printed = capsys.readouterr().out
    kinds = [r['index'] for r in rows]
    if import_faiss() is None:
        assert kinds == ['flat'] and 'pip install faiss-cpu' in printed
    else:
        assert kinds == ['flat', 'flat', 'ivf', 'hnsw', 'ivfpq']
        assert rows[1]['backend'] == 'torch' and rows[1]['recall10'] == 1.0
        assert all(0.0 <= r['recall10'] <= 1.0 for r in rows[1:])
    assert 'recall@10' in printed and json.loads(out.read_text()) == rows
