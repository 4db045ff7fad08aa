"""cmc_map against an independent, slow per-query reference written with plain Python loops."""

import numpy as np
import pytest
import torch

from promptsg.errors import DataError
from promptsg.evaluation.functional import (
    cmc_map,
    feature_cmc_map,
    multi_split_cmc_map,
    pairwise_distance,
)


def slow_reference(dist, q_pids, g_pids, q_cams, g_cams, ap, topk=(1, 5, 10)):
    """One query at a time: sort by (distance, gallery index), drop junk, walk the list."""
    aps, inps, firsts = [], [], []
    for q in range(len(q_pids)):
        order = sorted(range(len(g_pids)), key=lambda j, q=q: (dist[q][j], j))
        ranked = []
        for j in order:
            same_id = g_pids[j] == q_pids[q]
            known = q_cams is not None and q_cams[q] != -1 and g_cams[j] != -1
            if same_id and known and g_cams[j] == q_cams[q]:
                continue
            ranked.append(same_id)
        n_good = sum(ranked)
        if n_good == 0:
            continue
        found, total, prev_precision, last = 0, 0.0, 1.0, 0
        for position, good in enumerate(ranked, start=1):
            precision = (found + good) / position
            if good:
                found += 1
                if found == 1:
                    firsts.append(position)
                if ap == 'standard':
                    total += precision
                else:
                    total += (prev_precision + precision) / 2
                last = position
            prev_precision = precision
        aps.append(total / n_good)
        inps.append(n_good / last)
    result = {f'rank{k}': 100 * sum(f <= k for f in firsts) / len(firsts) for k in topk}
    result.update(mAP=100 * sum(aps) / len(aps), mINP=100 * sum(inps) / len(inps))
    result['num_valid_queries'] = len(aps)
    return result


def random_case(seed, num_q=23, num_g=61, num_ids=7):
    rng = np.random.default_rng(seed)
    dist = rng.integers(0, 5, size=(num_q, num_g)).astype(np.float64)  # many ties
    q_pids = rng.integers(0, num_ids, num_q)
    g_pids = rng.integers(0, num_ids, num_g)
    q_cams = rng.integers(-1, 3, num_q)
    g_cams = rng.integers(-1, 3, num_g)
    return dist, q_pids, g_pids, q_cams, g_cams


def assert_same(result, expected):
    assert result['num_valid_queries'] == expected['num_valid_queries']
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-9), key


@pytest.mark.parametrize('ap', ['standard', 'trapezoid'])
@pytest.mark.parametrize('camera_filter', [True, False])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_matches_slow_reference_with_ties(ap, camera_filter, seed):
    dist, q_pids, g_pids, q_cams, g_cams = random_case(seed)
    expected = slow_reference(
        dist.tolist(),
        q_pids.tolist(),
        g_pids.tolist(),
        q_cams.tolist() if camera_filter else None,
        g_cams.tolist() if camera_filter else None,
        ap,
    )
    for chunk_size in (1, 4, 7, 1000, None):
        result = cmc_map(
            torch.from_numpy(dist),
            q_pids,
            g_pids,
            q_cams,
            g_cams,
            ap=ap,
            camera_filter=camera_filter,
            chunk_size=chunk_size,
        )
        assert_same(result, expected)
    # float32 distances rank identically (integers are exact)
    assert_same(cmc_map(torch.from_numpy(dist).float(), q_pids, g_pids, q_cams, g_cams, ap=ap,
                        camera_filter=camera_filter), expected)  # fmt: skip


def test_filtering_changes_scores_on_random_case():
    dist, q_pids, g_pids, q_cams, g_cams = random_case(5)
    on = cmc_map(torch.from_numpy(dist), q_pids, g_pids, q_cams, g_cams)
    off = cmc_map(torch.from_numpy(dist), q_pids, g_pids, q_cams, g_cams, camera_filter=False)
    assert on['mAP'] != pytest.approx(off['mAP'])


@pytest.mark.parametrize('metric', ['cosine', 'euclidean'])
def test_feature_path_and_splits_match_reference(metric):
    rng = np.random.default_rng(3)
    feats = torch.from_numpy(rng.normal(size=(40, 8)))
    pids = rng.integers(0, 6, 40)
    cams = rng.integers(0, 2, 40)
    q, g = list(range(0, 12)), list(range(12, 40))
    dist = pairwise_distance(feats[q], feats[g], metric)
    expected = slow_reference(
        dist.tolist(), pids[q].tolist(), pids[g].tolist(), cams[q].tolist(), cams[g].tolist(),
        'standard',
    )  # fmt: skip
    for chunk_size in (1, 5, None):
        got = feature_cmc_map(
            feats[q], feats[g], pids[q], pids[g], cams[q], cams[g], metric, chunk_size=chunk_size
        )
        assert_same(got, expected)

    splits = [
        {'query': q, 'gallery': g},
        {'query': list(range(30, 40)), 'gallery': list(range(0, 30))},
    ]
    out = multi_split_cmc_map(feats, pids, cams, splits, metric=metric, ap='trapezoid')
    per_split = []
    for split in splits:
        qi, gi = split['query'], split['gallery']
        d = pairwise_distance(feats[qi], feats[gi], metric).tolist()
        per_split.append(
            slow_reference(
                d, pids[qi].tolist(), pids[gi].tolist(), cams[qi].tolist(), cams[gi].tolist(),
                'trapezoid',
            )
        )  # fmt: skip
    for got, want in zip(out['splits'], per_split):
        assert_same(got, want)
    for key in ('rank1', 'mAP', 'mINP'):
        values = [s[key] for s in per_split]
        assert out['mean'][key] == pytest.approx(np.mean(values), abs=1e-9)
        assert out['std'][key] == pytest.approx(np.std(values), abs=1e-9)


def continuous_case_with_ties(seed, num_q=30, num_g=400, num_ids=12):
    """Float distances where some non-matches copy a correct match's distance exactly."""
    rng = np.random.default_rng(seed)
    dist = rng.random((num_q, num_g)).astype(np.float32)
    q_pids = rng.integers(0, num_ids, num_q)
    g_pids = rng.integers(0, num_ids, num_g)
    for q in range(num_q):
        hits = np.flatnonzero(g_pids == q_pids[q])
        others = np.flatnonzero(g_pids != q_pids[q])
        if hits.size:
            dist[q, rng.choice(others, 3)] = dist[q, rng.choice(hits)]
    return dist, q_pids, g_pids, rng.integers(-1, 4, num_q), rng.integers(0, 4, num_g)


@pytest.mark.parametrize('hist_bins', [1, 2, 7, 2048])
def test_histogram_bins_change_speed_not_results(monkeypatch, hist_bins):
    from promptsg.evaluation import functional

    dist, q_pids, g_pids, q_cams, g_cams = continuous_case_with_ties(hist_bins)
    expected = slow_reference(
        dist.tolist(), q_pids.tolist(), g_pids.tolist(), q_cams.tolist(), g_cams.tolist(),
        'trapezoid',
    )  # fmt: skip
    monkeypatch.setattr(functional, 'HIST_BINS', hist_bins)
    for chunk_size in (3, None):
        got = cmc_map(
            torch.from_numpy(dist), q_pids, g_pids, q_cams, g_cams, ap='trapezoid',
            chunk_size=chunk_size,
        )  # fmt: skip
        assert_same(got, expected)


def test_non_finite_distances_are_rejected():
    dist = torch.rand(2, 5)
    dist[1, 3] = float('nan')
    with pytest.raises(DataError, match='finite'):
        cmc_map(dist, [0, 1], [0, 1, 0, 1, 0])


@pytest.mark.parametrize('reference', ['eval_func', 'vectorised'])
def test_benchmark_reference_agrees_with_cmc_map(reference):
    """bench/eval_speed.py's NumPy baselines score what cmc_map scores (float data, no ties)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / 'bench' / 'eval_speed.py'
    spec = importlib.util.spec_from_file_location('eval_speed', path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    q_feats, g_feats, q_pids, g_pids, q_cams, g_cams = bench.make_case(40, 300, 16, 20, 3)
    loop = bench.REFERENCES[reference][1]
    rank1, mean_ap, valid = loop(
        bench.feature_rows(q_feats, g_feats), 40, q_pids, g_pids, q_cams, g_cams
    )
    ours = cmc_map(
        pairwise_distance(torch.from_numpy(q_feats).double(), torch.from_numpy(g_feats).double()),
        q_pids, g_pids, q_cams, g_cams,
    )  # fmt: skip
    assert valid == ours['num_valid_queries']
    assert rank1 == pytest.approx(ours['rank1'])
    assert mean_ap == pytest.approx(ours['mAP'], abs=1e-4)
