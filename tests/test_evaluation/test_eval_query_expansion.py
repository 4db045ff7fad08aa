"""AQE / alpha-QE against a plain-loop reference of fast-reid's definition, and the metric option."""

import numpy as np
import pytest
import torch

from promptsg.errors import ConfigError
from promptsg.evaluation import ReIDMetric
from promptsg.evaluation.functional import multi_split_cmc_map
from promptsg.evaluation.query_expansion import average_query_expansion


def loop_aqe(query, gallery, k, alpha, times):
    """fast-reid's ``aqe`` one row at a time (ties to the lower index)."""
    feats = np.concatenate([query, gallery]).astype(np.float64)
    for _ in range(times):
        normed = feats / np.linalg.norm(feats, axis=1, keepdims=True)
        out = []
        for i in range(len(feats)):
            sims = [float(normed[i] @ normed[j]) for j in range(len(feats))]
            order = sorted(range(len(feats)), key=lambda j: (-sims[j], j))[:k]
            out.append(sum(feats[j] * sims[j] ** alpha for j in order) / k)
        feats = np.stack(out)
    return feats[: len(query)], feats[len(query) :]


@pytest.mark.parametrize('k,alpha,times', [(10, 3.0, 1), (5, 0.0, 1), (3, 1.0, 2), (1, 3.0, 1)])
def test_matches_loop_reference(k, alpha, times):
    rng = np.random.default_rng(k)
    query, gallery = rng.normal(size=(7, 5)), rng.normal(size=(23, 5))
    got_q, got_g = average_query_expansion(
        torch.from_numpy(query), torch.from_numpy(gallery), k=k, alpha=alpha, times=times
    )
    want_q, want_g = loop_aqe(query, gallery, k, alpha, times)
    np.testing.assert_allclose(got_q.numpy(), want_q, atol=1e-12)
    np.testing.assert_allclose(got_g.numpy(), want_g, atol=1e-12)


def test_metric_option_changes_scores_and_validates():
    gen = torch.Generator().manual_seed(0)
    pids = torch.arange(60) % 6
    feats = torch.randn(6, 8, generator=gen)[pids] + 1.2 * torch.randn(60, 8, generator=gen)
    split = [{'query': list(range(12)), 'gallery': list(range(12, 60))}]
    plain = multi_split_cmc_map(feats, pids, None, split)['mean']
    expanded = multi_split_cmc_map(feats, pids, None, split, query_expansion=True)['mean']
    q, g = average_query_expansion(feats[:12], feats[12:])
    direct = multi_split_cmc_map(torch.cat([q, g]), pids, None, split)['mean']
    assert expanded == direct
    assert expanded['mAP'] != pytest.approx(plain['mAP'], abs=1e-6)
    both = multi_split_cmc_map(
        feats, pids, None, split, query_expansion=dict(k=5, alpha=0.0), rerank=True
    )['mean']
    assert both['num_valid_queries'] == plain['num_valid_queries']
    with pytest.raises(ConfigError, match='alpha'):
        ReIDMetric(query_expansion=dict(alpha=-1))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['beta'\]"):
        ReIDMetric(query_expansion=dict(beta=1))
    with pytest.raises(ConfigError, match='query_expansion'):
        ReIDMetric(query_expansion='yes')
