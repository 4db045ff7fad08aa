"""k-reciprocal re-ranking: a plain-loop reference, invariances and a case where it must help."""

import math

import numpy as np
import pytest
import torch

from promptsg.errors import ConfigError, DataError
from promptsg.evaluation.functional import cmc_map, pairwise_distance
from promptsg.evaluation.rerank import k_reciprocal_rerank


def slow_rerank(q_g, q_q, g_g, k1, k2, lam):
    """Zhong et al. 2017 with Python lists and sets, one image at a time."""
    num_q, num_g = len(q_g), len(q_g[0])
    n = num_q + num_g

    def raw(i, j):
        if i < num_q and j < num_q:
            return q_q[i][j]
        if i < num_q:
            return q_g[i][j - num_q]
        if j < num_q:
            return q_g[j][i - num_q]
        return g_g[i - num_q][j - num_q]

    sq = [[raw(i, j) ** 2 for j in range(n)] for i in range(n)]
    col_max = [max(sq[r][c] for r in range(n)) for c in range(n)]
    d = [[sq[j][i] / col_max[i] for j in range(n)] for i in range(n)]  # normalise, transpose
    order = [sorted(range(n), key=lambda j, i=i: (d[i][j], j)) for i in range(n)]

    def recip(i, k):
        return {j for j in order[i][: k + 1] if i in order[j][: k + 1]}

    v = []
    for i in range(n):
        r_i = recip(i, k1)
        expanded = set(r_i)
        for c in r_i:
            r_c = recip(c, round(k1 / 2))
            if len(r_c & r_i) > 2 / 3 * len(r_c):
                expanded |= r_c
        w = {j: math.exp(-d[i][j]) for j in expanded}
        total = sum(w.values())
        v.append([w.get(j, 0.0) / total for j in range(n)])
    if k2 != 1:
        v = [[sum(v[m][j] for m in order[i][:k2]) / len(order[i][:k2]) for j in range(n)]
             for i in range(n)]  # fmt: skip
    out = []
    for i in range(num_q):
        row = []
        for j in range(num_q, n):
            shared = sum(min(v[i][k], v[j][k]) for k in range(n))
            jaccard = 1 - shared / (2 - shared)
            row.append(jaccard * (1 - lam) + d[i][j] * lam)
        out.append(row)
    return out


def random_dists(seed, num_q=6, num_g=17, dim=4):
    rng = np.random.default_rng(seed)
    feats = torch.from_numpy(rng.normal(size=(num_q + num_g, dim)))
    q, g = feats[:num_q], feats[num_q:]
    return (
        pairwise_distance(q, g, 'euclidean'),
        pairwise_distance(q, q, 'euclidean'),
        pairwise_distance(g, g, 'euclidean'),
    )


@pytest.mark.parametrize('k1,k2,lam', [(5, 3, 0.3), (4, 1, 0.5), (20, 6, 0.3), (3, 2, 0.0)])
def test_matches_slow_reference(k1, k2, lam):
    q_g, q_q, g_g = random_dists(k1 + k2)
    got = k_reciprocal_rerank(q_g, q_q, g_g, k1=k1, k2=k2, lambda_value=lam)
    want = slow_rerank(q_g.tolist(), q_q.tolist(), g_g.tolist(), k1, k2, lam)
    assert got.shape == (6, 17)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), np.array(want), atol=1e-10)


def test_permutation_equivariance_and_range():
    q_g, q_q, g_g = random_dists(11, num_q=5, num_g=20)
    base = k_reciprocal_rerank(q_g, q_q, g_g, k1=6, k2=3)
    perm_g, perm_q = torch.randperm(20), torch.randperm(5)
    moved = k_reciprocal_rerank(
        q_g[perm_q][:, perm_g], q_q[perm_q][:, perm_q], g_g[perm_g][:, perm_g], k1=6, k2=3
    )
    assert torch.allclose(moved, base[perm_q][:, perm_g], atol=1e-12)
    assert bool((base >= 0).all()) and bool((base <= 1 + 1e-12).all())
    # lambda = 1 keeps only the (squared, normalised) original distance: same ranking per row
    plain = k_reciprocal_rerank(q_g, q_q, g_g, k1=6, k2=3, lambda_value=1.0)
    assert torch.equal(plain.argsort(1), q_g.argsort(1))
    assert not torch.equal(base.argsort(1), q_g.argsort(1))


def test_improves_map_where_neighbourhoods_disagree():
    # query (pid 0) at the origin; its true matches A lie at distance 1 around it and see the
    # query among their nearest; a distractor cluster B (pid 1) at 0.9 is nearer to the query
    # but surrounded by a cluster C (pid 2), so the query is not among B's k-nearest.
    rng = np.random.default_rng(0)
    a = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    b = np.array([-0.9, 0.0]) + 0.01 * rng.normal(size=(6, 2))
    c = np.array([-1.2, 0.0]) + 0.01 * rng.normal(size=(10, 2))
    q = torch.zeros(1, 2, dtype=torch.float64)
    g = torch.from_numpy(np.concatenate([a, b, c]))
    g_pids = [0] * 3 + [1] * 6 + [2] * 10
    q_g = pairwise_distance(q, g, 'euclidean')
    before = cmc_map(q_g, [0], g_pids)
    after = cmc_map(
        k_reciprocal_rerank(
            q_g, pairwise_distance(q, q, 'euclidean'), pairwise_distance(g, g, 'euclidean'),
            k1=9, k2=1,
        ),
        [0], g_pids,
    )  # fmt: skip
    assert before['rank1'] == 0.0 and before['mAP'] < 30.0
    assert after['rank1'] == 100.0 and after['mAP'] == pytest.approx(100.0)


def test_bad_arguments():
    q_g, q_q, g_g = random_dists(0)
    with pytest.raises(ConfigError, match='k1'):
        k_reciprocal_rerank(q_g, q_q, g_g, k1=0)
    with pytest.raises(ConfigError, match='lambda_value'):
        k_reciprocal_rerank(q_g, q_q, g_g, lambda_value=2.0)
    with pytest.raises(DataError, match='distances'):
        k_reciprocal_rerank(q_g, g_g, q_q)
