"""ReIDMetric end to end: records in any order, duplicates, splits, the mmengine Evaluator."""

import random

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator

from promptsg.errors import ConfigError, DataError
from promptsg.evaluation import ReIDMetric
from promptsg.evaluation.functional import cmc_map, pairwise_distance
from promptsg.registry import METRICS


def make_records(num=48, dim=16, seed=0, offset=100):
    """Predict-style records: noisy identity prototypes, two cameras, sample_idx from offset."""
    gen = torch.Generator().manual_seed(seed)
    pids = torch.arange(num) % 8
    protos = torch.randn(8, dim, generator=gen)
    feats = torch.nn.functional.normalize(
        protos[pids] + torch.randn(num, dim, generator=gen), dim=1
    )
    return [
        {
            'feat': feats[i],
            'pid': int(pids[i]),
            'camid': (i // 8) % 2,
            'sample_idx': offset + i,
            'is_query': i < 12,
        }
        for i in range(num)
    ]


def feed(metric, records, batch=5):
    for s in range(0, len(records), batch):
        metric.process({}, records[s : s + batch])
    return metric.compute_metrics(metric.results)


def direct(records, q_rows, g_rows, metric='cosine', ap='standard'):
    feats = torch.stack([r['feat'] for r in records])
    pids = [r['pid'] for r in records]
    cams = [r['camid'] for r in records]
    return cmc_map(
        pairwise_distance(feats[q_rows], feats[g_rows], metric),
        [pids[i] for i in q_rows],
        [pids[i] for i in g_rows],
        [cams[i] for i in q_rows],
        [cams[i] for i in g_rows],
        ap=ap,
    )


def test_is_query_mode_order_independent_and_deduplicated():
    records = make_records()
    expected = direct(records, list(range(12)), list(range(12, 48)), 'euclidean', 'trapezoid')
    shuffled = records[:]
    random.Random(0).shuffle(shuffled)
    padded = shuffled + shuffled[:7]  # distributed padding repeats samples
    for recs in (records, shuffled, padded):
        got = feed(ReIDMetric(metric='euclidean', ap='trapezoid'), recs)
        assert set(got) == {'rank1', 'rank5', 'rank10', 'mAP', 'mINP', 'num_valid_queries'}
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, abs=1e-9), key


def test_splits_mode_mean_std_and_per_split_keys():
    records = make_records()
    sample_ids = [r['sample_idx'] for r in records]
    splits = [
        {'query': sample_ids[:12], 'gallery': sample_ids[12:]},
        {'query': sample_ids[36:], 'gallery': sample_ids[:36]},
        {'query': sample_ids[20:30], 'gallery': sample_ids[:20] + sample_ids[30:]},
    ]
    metric = ReIDMetric()
    metric.dataset_meta = {'splits': splits}
    shuffled = records[:]
    random.Random(1).shuffle(shuffled)
    got = feed(metric, shuffled)

    rows = {s: i for i, s in enumerate(sample_ids)}
    per_split = [
        direct(records, [rows[s] for s in sp['query']], [rows[s] for s in sp['gallery']])
        for sp in splits
    ]
    for key in ('rank1', 'rank5', 'rank10', 'mAP', 'mINP'):
        values = [p[key] for p in per_split]
        assert got[key] == pytest.approx(np.mean(values), abs=1e-9)
        assert got[f'{key}_std'] == pytest.approx(np.std(values), abs=1e-9)
        for i, value in enumerate(values):
            assert got[f'split{i}/{key}'] == pytest.approx(value, abs=1e-9)
    assert len({round(p['mAP'], 6) for p in per_split}) == 3  # the splits really differ


def test_split_naming_an_unseen_sample_is_a_data_error():
    metric = ReIDMetric()
    metric.dataset_meta = {'splits': [{'query': [100], 'gallery': [101, 999]}]}
    with pytest.raises(DataError, match='999'):
        feed(metric, make_records())


def test_rerank_option_runs_and_changes_distances():
    records = make_records(num=40)
    plain = feed(ReIDMetric(), records)
    reranked = feed(ReIDMetric(rerank=dict(k1=4, k2=2, lambda_value=0.3)), records)
    assert reranked['num_valid_queries'] == plain['num_valid_queries']
    assert reranked['mAP'] != pytest.approx(plain['mAP'], abs=1e-9)


def test_bad_options_and_empty_sides():
    with pytest.raises(ConfigError, match="metric='cos'.*cosine, euclidean"):
        ReIDMetric(metric='cos')
    with pytest.raises(ConfigError, match="ap='voc'.*standard, trapezoid"):
        ReIDMetric(ap='voc')
    with pytest.raises(ConfigError, match='topk'):
        ReIDMetric(topk=())
    only_gallery = [dict(r, is_query=False) for r in make_records()]
    with pytest.raises(DataError, match='0 queries'):
        feed(ReIDMetric(), only_gallery)
    only_query = [dict(r, is_query=True) for r in make_records()]
    with pytest.raises(DataError, match='0 gallery'):
        feed(ReIDMetric(), only_query)


def test_registered_and_prefixed_through_mmengine_evaluator():
    metric = METRICS.build(dict(type='ReIDMetric', topk=(1, 3)))
    assert isinstance(metric, ReIDMetric)
    evaluator = Evaluator([metric])
    records = make_records()
    for s in range(0, len(records), 8):
        evaluator.process(records[s : s + 8], {})
    scores = evaluator.evaluate(len(records))
    assert {'reid/rank1', 'reid/rank3', 'reid/mAP', 'reid/mINP'} <= set(scores)
    assert scores['reid/mAP'] == pytest.approx(
        direct(records, list(range(12)), list(range(12, 48)))['mAP']
    )
