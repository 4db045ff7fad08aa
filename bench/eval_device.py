"""Evaluation time of a Market-size feature set on a device (the GPU check's evaluation figure).

    python bench/eval_device.py --quick
    python bench/eval_device.py --device cuda

Random L2-normalised features (3,368 queries × 15,913 gallery, D = 512, 751 identities,
6 cameras; Market-1501's sizes) are scored with the Market protocol, cosine distance, two ways:
``feature_cmc_map`` with features and ids on ``--device`` (what the device itself can do), and
``ReIDMetric.compute_metrics`` on the records a test run collects (features on the CPU, as
``ReIDMetric.process`` stores them). ``bench/eval_speed.py`` compares the CPU path with a NumPy
reference; this script adds the device.
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402

from bench.harness import (  # noqa: E402
    add_common_args,
    device_of,
    interleaved,
    report,
    settings,
    time_figure,
)
from promptsg.engine.cli import run_cli  # noqa: E402
from promptsg.evaluation.functional import feature_cmc_map  # noqa: E402
from promptsg.evaluation.reid_metric import ReIDMetric  # noqa: E402

BENCH = 'eval_device'
DEFAULTS = {
    'smoke': dict(num_query=200, num_gallery=1000, dim=64, repeats=1),
    'quick': dict(num_query=3368, num_gallery=15913, dim=512, repeats=2),
    'full': dict(num_query=3368, num_gallery=15913, dim=512, repeats=5),
}
NUM_IDS, NUM_CAMS = 751, 6


def feature_set(num_query: int, num_gallery: int, dim: int, seed: int = 0) -> dict:
    """Random unit features ``(Q + G, D)`` with ``pid``/``camid`` (Q + G,) and the query flag."""
    gen = torch.Generator().manual_seed(seed)
    total = num_query + num_gallery
    feats = torch.nn.functional.normalize(torch.randn(total, dim, generator=gen), dim=1)
    return dict(
        feats=feats,
        pid=torch.randint(0, NUM_IDS, (total,), generator=gen),
        camid=torch.randint(0, NUM_CAMS, (total,), generator=gen),
        is_query=torch.arange(total) < num_query,
    )


def on_device(data: dict, device: torch.device):
    """A call scoring ``data`` with ``feature_cmc_map``, everything on ``device``."""
    q = data['is_query'].to(device)
    feats, pid, camid = (data[k].to(device) for k in ('feats', 'pid', 'camid'))

    def score() -> dict:
        return feature_cmc_map(feats[q], feats[~q], pid[q], pid[~q], camid[q], camid[~q])

    return score


def through_metric(data: dict):
    """A call of ``ReIDMetric.compute_metrics`` on the records of a test run (CPU features)."""
    metric = ReIDMetric()
    records = [
        dict(feat=f, pid=int(p), camid=int(c), sample_idx=i, is_query=bool(q))
        for i, (f, p, c, q) in enumerate(
            zip(data['feats'], data['pid'], data['camid'], data['is_query'])
        )
    ]

    def score() -> dict:
        return metric.compute_metrics(records)

    return score


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    add_common_args(parser)
    parser.add_argument('--num-query', type=int, help='queries (Market: 3368)')
    parser.add_argument('--num-gallery', type=int, help='gallery images (Market: 15913)')
    parser.add_argument('--dim', type=int, help='feature width')
    parser.add_argument('--repeats', type=int, help='timed rounds')
    return parser.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    device = device_of(args)
    opts = settings(args, DEFAULTS)
    MMLogger.get_current_instance().setLevel('WARNING')  # the metric logs its table
    data = feature_set(opts['num_query'], opts['num_gallery'], opts['dim'])
    variants = {'device': on_device(data, device), 'metric': through_metric(data)}
    first = {name: fn() for name, fn in variants.items()}
    if abs(first['device']['mAP'] - first['metric']['mAP']) > 1e-3:
        raise RuntimeError(f'the two paths disagree: {first["device"]} vs {first["metric"]}')
    times = interleaved(variants, opts['repeats'], warmup=0, device=device)
    case = f'{opts["num_query"]}x{opts["num_gallery"]} D={opts["dim"]}'
    rows = [
        time_figure(BENCH, case, f'feature_cmc_map on {device.type}', times['device']),
        time_figure(BENCH, case, 'ReIDMetric.compute_metrics (CPU)', times['metric']),
    ]
    report('Evaluation of a Market-size feature set', rows, device, args.json)
    return rows


if __name__ == '__main__':
    run_cli(main)
