"""k-reciprocal re-ranking at scale: the dense reference against the sparse implementation.

    python bench/rerank_scale.py            # Market size dense vs sparse, MSMT17 size sparse
    python bench/rerank_scale.py --quick    # shrunken sizes (about a minute)
    python bench/rerank_scale.py --smoke    # tiny sizes (the tests)

Synthetic features (D=512): identity prototypes plus noise, about 21 images per identity over
6 cameras (Market-like), L2-normalised, cosine distance, k1=20, k2=6, lambda=0.3. Sizes:
Market-1501 test set 3,368 queries + 15,913 gallery (19,281), MSMT17 11,659 + 82,161 (93,820).

Each measurement runs in a fresh subprocess; "peak MB" is the growth of its peak resident
memory (VmHWM, reset once the features exist) during re-ranking and scoring. The dense run gets
the three distance matrices as inputs (built before the reset, as an evaluation would hold
them) and scores the (Q, G) result with cmc_map; the sparse run starts from the features and
scores its chunks as they come (multi_split_cmc_map with rerank mode 'sparse'). Both write
their re-ranked distances when the comparison is asked for, and the parent compares them
(max |difference|) and the Rank-1/mAP they give.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import reset_peak_rss, status_kib  # noqa: E402
from promptsg.evaluation.functional import (  # noqa: E402
    cmc_map,
    multi_split_cmc_map,
    pairwise_distance,
)
from promptsg.evaluation.rerank import SparseRerank, k_reciprocal_rerank  # noqa: E402

SIZES = {
    'full': {'market': (3368, 15913), 'msmt': (11659, 82161)},
    'quick': {'market': (600, 2800), 'msmt': (2000, 14000)},
    'smoke': {'market': (40, 160), 'msmt': (60, 300)},
}
RERANK = dict(k1=20, k2=6, lambda_value=0.3)
#: Noise around each identity prototype: same-identity cosine about 1 / (1 + NOISE**2).
NOISE = 2.6


def make_case(num_q: int, num_g: int, dim: int = 512, per_id: int = 21, cams: int = 6, seed=0):
    """Features (N, D) float32 (queries first), pids and camids (N,) int64."""
    gen = torch.Generator().manual_seed(seed)
    num = num_q + num_g
    ids = max(1, num // per_id)
    pids = torch.randint(0, ids, (num,), generator=gen)
    feats = torch.randn(ids, dim, generator=gen)[pids]
    feats += NOISE * torch.randn(num, dim, generator=gen)
    camids = torch.randint(0, cams, (num,), generator=gen)
    return torch.nn.functional.normalize(feats, dim=1), pids, camids


def worker(args) -> None:
    torch.set_num_threads(args.threads)
    feats, pids, camids = make_case(args.num_q, args.num_g)
    q, g = slice(0, args.num_q), slice(args.num_q, None)
    ids = (pids[q], pids[g], camids[q], camids[g])
    inputs = None
    if args.worker == 'dense':
        inputs = tuple(
            pairwise_distance(a, b)
            for a, b in ((feats[q], feats[g]), (feats[q], feats[q]), (feats[g], feats[g]))
        )
    baseline = status_kib('VmRSS')
    exact_peak = reset_peak_rss()
    start = time.perf_counter()
    if args.worker == 'dense':
        dist = k_reciprocal_rerank(*inputs, **RERANK)
        scores = cmc_map(dist, *ids)
    else:
        split = [{'query': list(range(args.num_q)), 'gallery': list(range(args.num_q, len(feats)))}]
        scores = multi_split_cmc_map(
            feats, pids, camids, split, rerank=dict(RERANK, mode='sparse')
        )['mean']
        dist = None
    seconds = time.perf_counter() - start
    peak_mib = (status_kib('VmHWM') - baseline) / 1024 if exact_peak else float('nan')
    if args.save:
        if dist is None:  # not timed: the distances themselves, for the comparison
            dist = SparseRerank(feats[q], feats[g], **RERANK).distances()
        np.save(args.save, dist.numpy())
    print(json.dumps(dict(seconds=seconds, peak_mib=peak_mib, **scores)))


def measure(method: str, num_q: int, num_g: int, threads: int, save: str | None) -> dict:
    cmd = [sys.executable, __file__, '--worker', method, '--num-q', str(num_q)]
    cmd += ['--num-g', str(num_g), '--threads', str(threads)] + (['--save', save] if save else [])
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--quick', action='store_true', help='shrunken sizes')
    mode.add_argument('--smoke', action='store_true', help='tiny sizes (tests)')
    parser.add_argument('--threads', type=int, default=2, help='torch/BLAS threads per run')
    parser.add_argument('--skip-msmt', action='store_true', help='only the Market-size pair')
    parser.add_argument('--skip-market', action='store_true', help='only the MSMT17-size run')
    parser.add_argument('--json', help='also write the rows to this JSON file')
    parser.add_argument('--worker', choices=('dense', 'sparse'), help=argparse.SUPPRESS)
    parser.add_argument('--num-q', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--num-g', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--save', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return []
    sizes = SIZES['smoke' if args.smoke else 'quick' if args.quick else 'full']
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_market:
            num_q, num_g = sizes['market']
            runs = {}
            for method in ('dense', 'sparse'):
                save = runs_path(tmp, method)
                runs[method] = measure(method, num_q, num_g, args.threads, save)
            diff = float(
                np.abs(np.load(runs_path(tmp, 'dense')) - np.load(runs_path(tmp, 'sparse'))).max()
            )
            for method, run in runs.items():
                rows.append(row(f'{num_q} x {num_g}', method, run, diff, runs['dense']))
        if not args.skip_msmt:
            num_q, num_g = sizes['msmt']
            run = measure('sparse', num_q, num_g, args.threads, None)
            rows.append(row(f'{num_q} x {num_g}', 'sparse', run, None, None))
    table = [
        [r['case'], r['method'], f"{r['seconds']:.1f}", f"{r['peak_mib']:.0f}", f"{r['rank1']:.2f}",
         f"{r['mAP']:.2f}", r['vs_dense']]
        for r in rows
    ]  # fmt: skip
    print(
        f'\nk-reciprocal re-ranking (k1=20, k2=6, lambda=0.3), D=512, {args.threads} threads, '
        f'{os.cpu_count()} cores\n'
    )
    headers = ['case (Q x G)', 'method', 'seconds', 'peak MB', 'Rank-1', 'mAP', 'vs dense']
    print(tabulate(table, headers=headers, tablefmt='github', disable_numparse=True))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


def runs_path(tmp: str, method: str) -> str:
    return os.path.join(tmp, f'{method}.npy')


def row(case: str, method: str, run: dict, diff: float | None, dense: dict | None) -> dict:
    """One table row; ``vs_dense`` gives the distance difference and speed/memory ratios."""
    note = ''
    if dense is not None and method == 'sparse':
        same = run['rank1'] == dense['rank1'] and abs(run['mAP'] - dense['mAP']) < 1e-9
        note = (
            f'max |d - d_dense| {diff:.1e}; R1/mAP {"equal" if same else "DIFFER"}; '
            f'{dense["seconds"] / run["seconds"]:.1f}x faster, '
            f'{dense["peak_mib"] / max(run["peak_mib"], 1e-9):.1f}x less memory'
        )
    elif dense is not None:
        note = 'baseline'
    return dict(case=case, method=method, vs_dense=note, **run)


if __name__ == '__main__':
    main()
