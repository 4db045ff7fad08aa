"""tools/search.py: query folder against gallery folder → top-k CSV and a PNG grid."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from promptsg.apis import ReIDInferencer
from promptsg.apis.grid import MATCH_COLOUR, NO_MATCH_COLOUR, QUERY_COLOUR
from promptsg.datasets.synthetic import draw_person
from promptsg.engine.cli import run_cli
from promptsg.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / 'tools' / 'search.py'
TINY_CONFIG = ROOT / 'tests' / 'test_apis' / 'tiny_promptsg.py'
#: Grid layout defaults (promptsg.apis.grid): thumbnail 128x64, border 4, caption 14, gap 4.
CELL_W, CELL_H, GAP = 64 + 8 + 4, 128 + 8 + 14 + 4, 4


def _rows(path: Path) -> list[dict]:
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope='module')
def query_gallery(tmp_path_factory) -> tuple[Path, Path]:
    """``query/<pid>/0.png`` and ``gallery/<pid>/{1,2}.png`` for 4 synthetic identities."""
    root = tmp_path_factory.mktemp('search')
    for pid in range(4):
        for split, indices in (('query', [0]), ('gallery', [1, 2])):
            (root / split / str(pid)).mkdir(parents=True)
            for i in indices:
                img = Image.fromarray(draw_person(3, pid, i, (96, 48)))
                img.save(root / split / str(pid) / f'{i}.png')
    return root / 'query', root / 'gallery'


def _check_results(rows: list[dict], num_queries: int, topk: int) -> None:
    assert len(rows) == num_queries * topk
    for q in range(num_queries):
        block = rows[q * topk : (q + 1) * topk]
        assert [int(r['rank']) for r in block] == list(range(1, topk + 1))
        assert len({r['query'] for r in block}) == 1
        scores = [float(r['score']) for r in block]
        assert scores == sorted(scores, reverse=True)
        for r in block:
            assert r['match'] == str(int(r['query_pid'] == r['gallery_pid']))


def _check_grid(path: Path, rows: list[dict], num_rows: int, topk: int) -> None:
    with Image.open(path) as grid:
        assert grid.format == 'PNG'
        assert grid.size == (GAP + (topk + 1) * CELL_W, GAP + num_rows * CELL_H)
        grid = grid.convert('RGB')
        for q in range(num_rows):
            y = GAP + q * CELL_H + 1
            assert grid.getpixel((GAP + 1, y)) == QUERY_COLOUR
            for j in range(topk):
                match = rows[q * topk + j]['match'] == '1'
                colour = MATCH_COLOUR if match else NO_MATCH_COLOUR
                assert grid.getpixel((GAP + (j + 1) * CELL_W + 1, y)) == colour


def test_search_folders_writes_ranked_csv_and_grid(checkpoint, query_gallery, tmp_path):
    query, gallery = query_gallery
    out, grid = tmp_path / 'res' / 'top.csv', tmp_path / 'res' / 'grid.png'
    proc = subprocess.run(
        [sys.executable, str(TOOL), str(TINY_CONFIG), str(checkpoint)]
        + ['--query', str(query), '--gallery', str(gallery), '--topk', '3']
        + ['--out', str(out), '--grid', str(grid), '--grid-rows', '3', '--no-progress'],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    rows = _rows(out)
    _check_results(rows, num_queries=4, topk=3)
    assert {r['query_pid'] for r in rows} == {'0', '1', '2', '3'}
    # the ranking is the inferencer's cosine ranking
    inferencer = ReIDInferencer(TINY_CONFIG, checkpoint)
    q_paths = sorted(query.glob('*/*.png'))
    g_paths = sorted(gallery.glob('*/*.png'))
    sim = inferencer(q_paths, progress=False) @ inferencer(g_paths, progress=False).T
    for q, path in enumerate(q_paths):
        best = [str(g_paths[j]) for j in np.argsort(-sim[q], kind='stable')[:3]]
        assert [r['gallery'] for r in rows if r['query'] == str(path)] == best
    hits = sum(rows[q * 3]['match'] == '1' for q in range(4))
    assert f'top-1 correct: {hits}/4' in proc.stdout
    _check_grid(grid, rows, num_rows=3, topk=3)


def test_user_errors(checkpoint, query_gallery, tmp_path, capsys, load_tool):
    query, gallery = query_gallery
    tool = load_tool('search')
    base = [str(TINY_CONFIG), str(checkpoint), '--query', str(query), '--gallery', str(gallery)]
    with pytest.raises(SystemExit) as info:  # what the command line prints, in one line
        run_cli(lambda: tool.main(base[:5] + [str(tmp_path / 'missing')]))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f'error: image, folder or list not found: {tmp_path / "missing"}'
    with pytest.raises(ConfigError, match='topk'):
        tool.main(base + ['--topk', '0'])
    with pytest.raises(ConfigError, match='PNG'):
        tool.main(base + ['--grid', str(tmp_path / 'grid.jpg')])
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DataError, match='no images'):
        tool.main(base[:5] + [str(tmp_path / 'empty')])


def test_cuhk03_mini_query_against_gallery(checkpoint, shared_data, tmp_path, load_tool):
    data = shared_data / 'cuhk03_mini'
    if not data.is_dir():
        pytest.skip('cuhk03_mini is absent')
    out, grid = tmp_path / 'top.csv', tmp_path / 'grid.png'
    result = load_tool('search').main(
        [str(TINY_CONFIG), str(checkpoint), '--no-progress', '--topk', '5']
        + ['--query', str(data / 'query'), '--gallery', str(data / 'bounding_box_test')]
        + ['--out', str(out), '--grid', str(grid), '--grid-rows', '4']
    )
    num_queries = len(list((data / 'query').glob('*.jpg')))
    rows = _rows(out)
    _check_results(rows, num_queries, topk=5)
    assert result.indices.shape == (num_queries, 5)
    for r in rows[:25]:  # Market-1501 names give the pids
        assert r['query_pid'] == str(int(Path(r['query']).name.split('_')[0]))
        assert r['gallery_pid'] == str(int(Path(r['gallery']).name.split('_')[0]))
    _check_grid(grid, rows, num_rows=4, topk=5)


def _market_ids(paths):
    pids, cams = [], []
    for p in paths:
        pid, cam = Path(p).name.split('_')[:2]
        pids.append(int(pid))
        cams.append(int(cam[1]) - 1)
    return pids, cams


def test_cuhk03_top1_uses_the_metric_camera_rule(
    checkpoint, shared_data, tmp_path, load_tool, capsys
):
    # issue 17: the top-1 share printed by search used to count same-camera matches (30/100)
    # while the metric ignores them (Rank-1 2.02): now both use the metric's rule
    from promptsg.evaluation.functional import feature_cmc_map

    data = shared_data / 'cuhk03_mini'
    if not data.is_dir():
        pytest.skip('cuhk03_mini is absent')
    result = load_tool('search').main(
        [str(TINY_CONFIG), str(checkpoint), '--no-progress', '--topk', '3']
        + ['--query', str(data / 'query'), '--gallery', str(data / 'bounding_box_test')]
        + ['--out', str(tmp_path / 'top.csv')]
    )
    out = capsys.readouterr().out
    inferencer = ReIDInferencer(TINY_CONFIG, checkpoint)
    q_paths = sorted(str(p) for p in (data / 'query').glob('*.jpg'))
    g_paths = sorted(str(p) for p in (data / 'bounding_box_test').glob('*.jpg'))
    q_pids, q_cams = _market_ids(q_paths)
    g_pids, g_cams = _market_ids(g_paths)
    scores = feature_cmc_map(
        torch.from_numpy(inferencer(q_paths, progress=False)),
        torch.from_numpy(inferencer(g_paths, progress=False)),
        q_pids, g_pids, q_cams, g_cams,
    )  # fmt: skip
    valid = scores['num_valid_queries']
    hits = round(scores['rank1'] * valid / 100)
    assert int(result.has_match.sum()) == valid
    assert f'top-1 correct: {hits}/{valid} queries' in out
    assert f"Rank-1 {scores['rank1']:.2f}%; gallery images with the query's pid and camera" in out
    # no returned gallery image shares the query's pid and camera
    for q, row in enumerate(result.indices):
        for g in row:
            assert not (g_pids[g] == q_pids[q] and g_cams[g] == q_cams[q])
    # --no-camera-filter says so and counts same-camera matches again
    load_tool('search').main(
        [str(TINY_CONFIG), str(checkpoint), '--no-progress', '--no-camera-filter']
        + ['--query', str(data / 'query'), '--gallery', str(data / 'bounding_box_test')]
        + ['--out', str(tmp_path / 'loose.csv')]
    )
    assert 'camera filter off' in capsys.readouterr().out


def test_topk_beyond_the_gallery_says_how_many_were_returned(
    checkpoint, query_gallery, tmp_path, load_tool, capsys
):
    query, gallery = query_gallery
    extra = tmp_path / 'gallery15'
    for i in range(15):
        path = extra / str(i % 5) / f'{i}.png'
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(draw_person(7, i % 5, i, (96, 48))).save(path)
    result = load_tool('search').main(
        [str(TINY_CONFIG), str(checkpoint), '--no-progress', '--topk', '100']
        + ['--query', str(query), '--gallery', str(extra), '--out', str(tmp_path / 'r.csv')]
    )
    out = capsys.readouterr().out
    assert 'top-100 requested: returned 15 per query (the gallery has 15 images' in out
    assert ((result.indices >= 0).sum(1) == 15).all()
    assert len(_rows(tmp_path / 'r.csv')) == 4 * 15


def test_search_a_saved_index_equals_searching_the_images(
    checkpoint, query_gallery, tmp_path, load_tool, capsys
):
    query, gallery = query_gallery
    index_file = tmp_path / 'g.idx'
    load_tool('extract').main(
        [str(TINY_CONFIG), str(checkpoint), str(gallery), '--no-progress']
        + ['--gallery-index', str(index_file)]
    )
    base = [str(TINY_CONFIG), str(checkpoint), '--no-progress', '--query', str(query)]
    direct = load_tool('search').main(
        base + ['--gallery', str(gallery), '--out', str(tmp_path / 'a.csv')]
    )
    indexed = load_tool('search').main(
        base + ['--gallery-index', str(index_file), '--out', str(tmp_path / 'b.csv')]
    )
    np.testing.assert_array_equal(direct.indices, indexed.indices)
    a_rows, b_rows = _rows(tmp_path / 'a.csv'), _rows(tmp_path / 'b.csv')
    assert [float(r.pop('score')) for r in a_rows] == pytest.approx(
        [float(r.pop('score')) for r in b_rows], abs=1e-5
    )  # the saved index may search with faiss, the images with torch
    assert a_rows == b_rows
    capsys.readouterr()
    # the same index queried with another model's settings: one clear line, exit 2
    tool = load_tool('search')
    with pytest.raises(SystemExit) as info:
        run_cli(
            lambda: tool.main(
                base
                + ['--prompt', 'composed', '--gallery-index', str(index_file)]
                + ['--out', str(tmp_path / 'c.csv')]
            )  # fmt: skip
        )
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: the index was built with another model')
    with pytest.raises(SystemExit):
        tool.parse_args(base + ['--gallery', str(gallery), '--gallery-index', str(index_file)])
