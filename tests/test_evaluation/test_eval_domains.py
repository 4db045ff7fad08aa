"""ReIDMetric per domain: several test sets in one run, each scored on its own query/gallery."""

import pytest
import torch

from promptsg.engine.runner import summary_line
from promptsg.errors import DataError
from promptsg.evaluation import ReIDMetric
from promptsg.evaluation.domains import group_by_domain, restrict_splits
from promptsg.evaluation.functional import cmc_map, pairwise_distance


def domain_records(domain, offset, seed, noise, num_ids=6, per_id=4):
    """One test set: pids 0..num_ids-1 (they collide across sets, as raw test pids do), two
    cameras, the first image of each id a query; ``noise`` sets how hard the set is."""
    gen = torch.Generator().manual_seed(seed)
    protos = torch.randn(num_ids, 16, generator=gen)
    records = []
    for i in range(num_ids * per_id):
        pid, k = divmod(i, per_id)
        feat = protos[pid] + noise * torch.randn(16, generator=gen)
        records.append(
            {
                'feat': torch.nn.functional.normalize(feat, dim=0),
                'pid': pid,
                'camid': k % 2,
                'sample_idx': offset + i,
                'is_query': k == 0,
                'domain': domain,
            }
        )
    return records


def alone(records, **kwargs):
    """The same records scored without domains (one test set on its own)."""
    metric = ReIDMetric(**kwargs)
    for r in records:
        metric.process({}, [{k: v for k, v in r.items() if k != 'domain'}])
    return metric.compute_metrics(metric.results)


def test_each_domain_scored_alone_and_flat_keys_are_the_mean():
    easy = domain_records('market1501', 0, seed=0, noise=0.1)
    hard = domain_records('dukemtmc', 100, seed=1, noise=1.5)
    metric = ReIDMetric()
    for start in range(0, 48, 5):  # batches that straddle the two sets
        metric.process({}, (easy + hard)[start : start + 5])
    metrics = metric.compute_metrics(metric.results)

    for name, records in (('market1501', easy), ('dukemtmc', hard)):
        expected = alone(records)
        for key in ('rank1', 'rank5', 'mAP', 'mINP', 'num_valid_queries'):
            assert metrics[f'{name}/{key}'] == pytest.approx(expected[key])
    for key in ('rank1', 'mAP', 'mINP'):
        mean = (metrics[f'market1501/{key}'] + metrics[f'dukemtmc/{key}']) / 2
        assert metrics[key] == pytest.approx(mean)
    assert metrics['num_valid_queries'] == 12
    assert metrics['market1501/mAP'] > metrics['dukemtmc/mAP']


def test_queries_never_match_another_domains_gallery():
    # Set b's gallery holds exact copies of set a's queries with the same (colliding) pids on
    # another camera: pooled into one gallery they would be perfect matches for a's queries.
    a = domain_records('a', 0, seed=0, noise=1.5)
    b = [
        {**r, 'sample_idx': 100 + i, 'domain': 'b', 'is_query': False, 'camid': 1 - r['camid']}
        for i, r in enumerate(a)
        if r['is_query']
    ]
    b += domain_records('b', 200, seed=3, noise=0.1)
    metric = ReIDMetric()
    metric.process({}, a + b)
    metrics = metric.compute_metrics(metric.results)
    assert metrics['a/mAP'] == pytest.approx(alone(a)['mAP'])
    assert alone(a)['mAP'] < 99
    pooled = alone(a + b)  # without domains: a's queries find b's copies
    assert pooled['rank1'] == 100.0


def test_domain_read_from_the_batch_when_predictions_lack_it():
    records = domain_records('x', 0, seed=0, noise=0.5) + domain_records('y', 50, 1, 0.5)
    metric = ReIDMetric()
    for start in range(0, len(records), 8):
        chunk = records[start : start + 8]
        batch = {
            'data_samples': {
                'sample_idx': torch.tensor([r['sample_idx'] for r in chunk]),
                'domain': [r['domain'] for r in chunk],
            }
        }
        # predictions in another order than the batch: matched by sample_idx, not position
        metric.process(batch, [{k: v for k, v in r.items() if k != 'domain'} for r in chunk[::-1]])
    metrics = metric.compute_metrics(metric.results)
    assert {'x/mAP', 'y/mAP'} <= set(metrics)


def test_multi_split_meta_is_cut_per_domain():
    records = domain_records('x', 0, seed=0, noise=0.8) + domain_records('y', 50, 1, 0.8)
    metric = ReIDMetric()
    q = [r['sample_idx'] for r in records if r['is_query']]
    g = [r['sample_idx'] for r in records if not r['is_query']]
    metric.dataset_meta = {'splits': [{'query': q, 'gallery': g}, {'query': q[::2], 'gallery': g}]}
    metric.process({}, records)
    metrics = metric.compute_metrics(metric.results)
    assert {'x/mAP', 'x/mAP_std', 'x/split1/mAP', 'y/mAP_std'} <= set(metrics)
    x = records[:24]
    feats = torch.stack([r['feat'] for r in x])
    qi = [i for i, r in enumerate(x) if r['is_query']][::2]
    gi = [i for i, r in enumerate(x) if not r['is_query']]
    expected = cmc_map(
        pairwise_distance(feats[qi], feats[gi]),
        [x[i]['pid'] for i in qi],
        [x[i]['pid'] for i in gi],
        [x[i]['camid'] for i in qi],
        [x[i]['camid'] for i in gi],
    )
    assert metrics['x/split1/mAP'] == pytest.approx(expected['mAP'])


def test_bad_domains_are_one_line_errors():
    assert group_by_domain([None, '']) is None
    with pytest.raises(DataError, match='1 of 2 evaluation samples have no domain'):
        group_by_domain(['a', None])
    with pytest.raises(DataError, match="domain name 'split0' is not allowed"):
        group_by_domain(['split0'])
    with pytest.raises(DataError, match="domain 'b' has no query images"):
        restrict_splits([{'query': [0], 'gallery': [1, 2]}], [1, 2], 'b')
    records = domain_records('a', 0, seed=0, noise=0.5)
    records += [{**records[5], 'sample_idx': 99, 'domain': 'gallery_only', 'is_query': False}]
    metric = ReIDMetric()
    metric.process({}, records)
    with pytest.raises(DataError, match="domain 'gallery_only' has no query images"):
        metric.compute_metrics(metric.results)


def test_summary_line_prints_every_test_set():
    records = domain_records('market1501', 0, 0, 0.5) + domain_records('dukemtmc', 50, 1, 0.5)
    metric = ReIDMetric()
    metric.process({}, records)
    metrics = {f'reid/{k}': v for k, v in metric.compute_metrics(metric.results).items()}
    line = summary_line(metrics)
    assert line.startswith(f'Rank-1 {metrics["reid/rank1"]:.2f}')
    assert '(mean of 2 test sets)' in line
    assert f'market1501: Rank-1 {metrics["reid/market1501/rank1"]:.2f}' in line
    assert f'dukemtmc: Rank-1 {metrics["reid/dukemtmc/rank1"]:.2f}' in line
    assert 'split' not in line
    plain = summary_line({'reid/rank1': 1.0, 'reid/mAP': 2.0, 'reid/split0/mAP': 2.0})
    assert plain == 'Rank-1 1.00  mAP 2.00'


def test_domains_from_dataset_meta_ranges():
    """A ConcatReIDDataset's metainfo['domains'] ({name: [start, stop)} of sample_idx) is enough."""
    x = domain_records('x', 0, seed=0, noise=0.5)
    y = domain_records('y', 24, seed=1, noise=0.5)
    metric = ReIDMetric()
    metric.dataset_meta = {'domains': {'x': [0, 24], 'y': [24, 48]}}
    metric.process({}, [{k: v for k, v in r.items() if k != 'domain'} for r in x + y])
    metrics = metric.compute_metrics(metric.results)
    assert metrics['x/mAP'] == pytest.approx(alone(x)['mAP'])
    assert metrics['y/mAP'] == pytest.approx(alone(y)['mAP'])
