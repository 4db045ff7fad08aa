"""Camera filtering on the real cuhk03_mini query/gallery names (Market-1501 layout).

Each image gets a synthetic feature that puts same-id same-camera gallery images first, every
other identity next (all tied) and same-id other-camera images last, so each query's scores
follow in closed form from three counts: s (same id, same camera), x (same id, other camera)
and n (other ids).
"""

import re
from pathlib import Path

import pytest
import torch

from promptsg.evaluation import ReIDMetric

DATA = Path(__file__).resolve().parents[2] / '..' / 'shared' / 'data' / 'cuhk03_mini'
NAME = re.compile(r'^(-?\d+)_c(\d+)s\d+_')


def read_names(folder: str) -> list[tuple[int, int]]:
    names = sorted((DATA / folder).glob('*.jpg'))
    return [(int(m.group(1)), int(m.group(2))) for m in map(NAME.match, (p.name for p in names))]


def synthetic_feats(ids: list[tuple[int, int]], columns: dict, gamma: float = 0.5) -> torch.Tensor:
    """+1 on the image's (pid, cam) column, -gamma on its pid's other cameras' columns."""
    feats = torch.zeros(len(ids), len(columns), dtype=torch.float64)
    for row, (pid, cam) in enumerate(ids):
        for (other_pid, other_cam), col in columns.items():
            if other_pid == pid:
                feats[row, col] = 1.0 if other_cam == cam else -gamma
    return feats


@pytest.fixture(scope='module')
def cuhk03():
    if not DATA.is_dir():
        pytest.skip(f'{DATA} not present')
    query, gallery = read_names('query'), read_names('bounding_box_test')
    columns = {key: i for i, key in enumerate(sorted(set(query + gallery)))}
    return query, gallery, synthetic_feats(query, columns), synthetic_feats(gallery, columns)


def expected_scores(query, gallery, camera_filter):
    aps, inps, rank1 = [], [], []
    for pid, cam in query:
        s = sum(g == (pid, cam) for g in gallery)
        x = sum(g[0] == pid and g[1] != cam for g in gallery)
        n = len(gallery) - s - x
        if camera_filter:
            s = 0  # removed from the ranking
        if s + x == 0:
            continue
        precisions = [1.0] * s + [(s + j) / (s + n + j) for j in range(1, x + 1)]
        aps.append(sum(precisions) / (s + x))
        inps.append((s + x) / (s + n + x) if x else 1.0)
        rank1.append(s > 0)
    return {
        'mAP': 100 * sum(aps) / len(aps),
        'mINP': 100 * sum(inps) / len(inps),
        'rank1': 100 * sum(rank1) / len(rank1),
        'num_valid_queries': len(aps),
    }


def run_metric(query, gallery, q_feats, g_feats, camera_filter):
    metric = ReIDMetric(camera_filter=camera_filter)
    records = [
        {'feat': f, 'pid': pid, 'camid': cam, 'sample_idx': i, 'is_query': i < len(query)}
        for i, (f, (pid, cam)) in enumerate(zip(torch.cat([q_feats, g_feats]), query + gallery))
    ]
    metric.process({}, records)
    return metric.compute_metrics(metric.results)


def test_camera_filter_excludes_same_camera_matches(cuhk03):
    query, gallery, q_feats, g_feats = cuhk03
    assert len(query) > 0 and len({c for _, c in gallery}) >= 2
    filtered = run_metric(query, gallery, q_feats, g_feats, camera_filter=True)
    unfiltered = run_metric(query, gallery, q_feats, g_feats, camera_filter=False)
    for got, flag in ((filtered, True), (unfiltered, False)):
        for key, value in expected_scores(query, gallery, flag).items():
            assert got[key] == pytest.approx(value, abs=1e-9), (flag, key)
    # same-camera matches lead the rankings (one query has none) unless the protocol removes them
    assert unfiltered['rank1'] > 90.0
    assert filtered['rank1'] == 0.0
    assert filtered['mAP'] < 10.0 < unfiltered['mAP']
