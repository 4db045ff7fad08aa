"""Sparse k-reciprocal re-ranking against the dense reference: distances, ties, R1/mAP, options."""

import pytest
import torch

from promptsg.errors import ConfigError, DataError
from promptsg.evaluation import ReIDMetric
from promptsg.evaluation.distance import stable_topk
from promptsg.evaluation.functional import cmc_map, multi_split_cmc_map, pairwise_distance
from promptsg.evaluation.rerank import SparseRerank, k_reciprocal_rerank


def dense(q, g, metric, k1, k2, lam):
    return k_reciprocal_rerank(
        pairwise_distance(q, g, metric),
        pairwise_distance(q, q, metric),
        pairwise_distance(g, g, metric),
        k1=k1,
        k2=k2,
        lambda_value=lam,
    )


def clustered(seed, num_q, num_g, dim, dtype=torch.float32, ids=10):
    gen = torch.Generator().manual_seed(seed)
    pids = torch.randint(0, ids, (num_q + num_g,), generator=gen)
    protos = torch.randn(ids, dim, generator=gen, dtype=dtype)
    feats = protos[pids] + 0.7 * torch.randn(num_q + num_g, dim, generator=gen, dtype=dtype)
    return feats[:num_q], feats[num_q:], pids[:num_q], pids[num_q:]


@pytest.mark.parametrize(
    'metric,k1,k2,lam,dtype',
    [
        ('euclidean', 5, 3, 0.3, torch.float64),
        ('cosine', 20, 6, 0.3, torch.float32),
        ('euclidean', 20, 6, 0.3, torch.float32),
        ('cosine', 4, 1, 0.5, torch.float64),
        ('cosine', 3, 2, 0.0, torch.float32),
        ('euclidean', 7, 4, 1.0, torch.float64),
    ],
)
def test_sparse_equals_dense(metric, k1, k2, lam, dtype):
    q, g, _, _ = clustered(k1 + k2, 25, 120, 8, dtype)
    want = dense(q, g, metric, k1, k2, lam)
    got = SparseRerank(q, g, metric, k1, k2, lam, chunk_size=11).distances()
    assert got.dtype == want.dtype and got.shape == want.shape == (25, 120)
    assert float((got - want).abs().max()) < 1e-6


@pytest.mark.parametrize('metric', ['euclidean', 'cosine'])
def test_sparse_equals_dense_with_ties(metric):
    # 0/1 vectors with exactly four ones in 8 dims: every distance is exact in floating point
    # (normalised entries are 0.5), so there are many exactly equal distances and duplicates
    gen = torch.Generator().manual_seed(3)
    ones = torch.rand(150, 8, generator=gen).argsort(1)[:, :4]
    feats = torch.zeros(150, 8, dtype=torch.float64).scatter_(1, ones, 1.0)
    q, g = feats[:30], feats[30:]
    for k1, k2 in [(8, 3), (20, 6), (10, 1)]:
        want = dense(q, g, metric, k1, k2, 0.3)
        got = SparseRerank(q, g, metric, k1, k2, 0.3, chunk_size=17).distances()
        assert bool(torch.isfinite(want).all())
        assert float((got - want).abs().max()) < 1e-12


def test_empty_reciprocal_set_is_finite_where_dense_gives_nan():
    # more than k1 + 1 copies of one image: the copies with higher indices are not among their
    # own k1 + 1 nearest, so their V is empty; the dense release divides 0 by 0 and the NaN
    # spreads over whole rows and columns, the sparse one finds nothing shared (Jaccard 1)
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(40, 4, generator=gen, dtype=torch.float64)
    feats[10:20] = feats[10]
    q, g = feats[:12], feats[12:]
    want = dense(q, g, 'euclidean', 5, 1, 0.3)
    got = SparseRerank(q, g, 'euclidean', 5, 1, 0.3).distances()
    assert not bool(torch.isfinite(want).all()) and bool(torch.isfinite(got).all())
    finite = torch.isfinite(want)
    assert float((got[finite] - want[finite]).abs().max()) < 1e-12


def test_chunk_sizes_do_not_change_the_result():
    q, g, _, _ = clustered(1, 20, 90, 6)
    base = SparseRerank(q, g, chunk_size=1000).distances()
    other = SparseRerank(q, g, chunk_size=1)
    chunked = torch.cat([d for _, d in other.chunks(chunk_size=3)])
    assert float((base - chunked).abs().max()) < 1e-6  # chunked matrix products round apart


def test_rank1_and_map_equal_dense_through_the_metric_core():
    q, g, q_pids, g_pids = clustered(2, 40, 200, 16)
    q_cam = torch.arange(40) % 2
    g_cam = torch.arange(200) % 3
    want = cmc_map(dense(q, g, 'cosine', 20, 6, 0.3), q_pids, g_pids, q_cam, g_cam)
    feats = torch.cat([q, g])
    pids, cams = torch.cat([q_pids, g_pids]), torch.cat([q_cam, g_cam])
    split = [{'query': list(range(40)), 'gallery': list(range(40, 240))}]
    for mode in ('sparse', 'dense'):
        got = multi_split_cmc_map(feats, pids, cams, split, rerank=dict(mode=mode), chunk_size=7)[
            'mean'
        ]
        assert got['rank1'] == want['rank1'] and got['mAP'] == pytest.approx(want['mAP'], 1e-9)
        assert got['num_valid_queries'] == want['num_valid_queries']
    plain = multi_split_cmc_map(feats, pids, cams, split)['mean']
    assert plain['mAP'] != pytest.approx(want['mAP'], abs=1e-6)


def test_metric_modes_agree_and_bad_options():
    q, g, q_pids, g_pids = clustered(4, 12, 60, 8)
    feats = torch.nn.functional.normalize(torch.cat([q, g]), dim=1)
    pids = torch.cat([q_pids, g_pids])
    records = [
        dict(feat=feats[i], pid=int(pids[i]), camid=i % 2, sample_idx=i, is_query=i < 12)
        for i in range(72)
    ]
    out = {}
    for mode in ('sparse', 'dense'):
        metric = ReIDMetric(rerank=dict(mode=mode, k1=6, k2=3))
        metric.process({}, records)
        out[mode] = metric.compute_metrics(metric.results)
    assert out['sparse']['rank1'] == out['dense']['rank1']
    assert out['sparse']['mAP'] == pytest.approx(out['dense']['mAP'], abs=1e-9)
    with pytest.raises(ConfigError, match="rerank.mode='full'.*sparse, dense"):
        ReIDMetric(rerank=dict(mode='full'))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['k3'\]"):
        ReIDMetric(rerank=dict(k3=1))
    with pytest.raises(ConfigError, match='k1'):
        ReIDMetric(rerank=dict(k1=0))


def test_stable_topk_is_a_stable_argsort_prefix():
    gen = torch.Generator().manual_seed(0)
    dist = torch.randint(0, 4, (9, 30), generator=gen).float()
    for k in (1, 5, 30):
        want = torch.argsort(dist, dim=1, stable=True)[:, :k]
        assert torch.equal(stable_topk(dist, k), want)


def test_sparse_bad_input():
    q, g, _, _ = clustered(0, 5, 20, 4)
    with pytest.raises(ConfigError, match='lambda_value'):
        SparseRerank(q, g, lambda_value=-0.1)
    with pytest.raises(DataError, match=r'\(Q, D\) and \(G, D\)'):
        SparseRerank(q, g[:, :3])
    bad = q.clone()
    bad[0, 0] = float('nan')
    with pytest.raises(DataError, match='finite'):
        SparseRerank(bad, g)
