"""Speed and peak memory of promptsg's cmc_map against two NumPy per-query references.

    python bench/eval_speed.py            # Market size (3,368 x 15,913) and 20,000 x 100,000
    python bench/eval_speed.py --quick    # Market size and a shrunken large case
    python bench/eval_speed.py --sizes 1000x5000 3368x15913

Random L2-normalised features (D=512) over ~750 identities and 6 cameras, cosine distance,
Market protocol (same-id same-camera gallery entries ignored), standard AP. Each measurement
runs in a fresh subprocess; "peak MB" is the growth of its peak resident memory (VmHWM, reset
after the inputs are built) while scoring. Cases up to ``--distmat-limit`` entries score a
precomputed distance matrix (every method reads the same one); larger ones start from features
(promptsg: feature_cmc_map, distances chunk by chunk; references: one distance row per query).

The two references, both per-query loops over a full ``np.argsort`` of the query's row:

* ``eval_func loop``: the Market-1501 evaluation of reid-strong-baseline (Luo et al., 2019)
  that TransReID and CLIP-ReID, PromptSG's code base, inherit: junk removal, cumulative matches,
  and each rank's precision from a Python comprehension over the whole kept row.
* ``vectorised loop``: the same loop with the precision taken only at the hits, in NumPy (a
  stricter baseline written for this bench; NumPy 2's SIMD argsort makes it fast).

On large cases the references run on a subsample of queries and their times are extrapolated
linearly (queries are independent); the table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import reset_peak_rss, status_kib  # noqa: E402
from promptsg.evaluation.functional import cmc_map, feature_cmc_map  # noqa: E402

MARKET = (3368, 15913)
LARGE = (20000, 100000)
QUICK_LARGE = (4000, 20000)


def make_case(num_q: int, num_g: int, dim: int, num_ids: int, num_cams: int, seed: int = 0):
    """Random features (Q, D), (G, D) with pids and camids; float32 and int64 numpy arrays."""
    rng = np.random.default_rng(seed)
    q_feats = rng.standard_normal((num_q, dim), dtype=np.float32)
    g_feats = rng.standard_normal((num_g, dim), dtype=np.float32)
    q_feats /= np.linalg.norm(q_feats, axis=1, keepdims=True)
    g_feats /= np.linalg.norm(g_feats, axis=1, keepdims=True)
    q_pids, g_pids = rng.integers(0, num_ids, num_q), rng.integers(0, num_ids, num_g)
    q_cams, g_cams = rng.integers(0, num_cams, num_q), rng.integers(0, num_cams, num_g)
    return q_feats, g_feats, q_pids, g_pids, q_cams, g_cams


def reference_map(row_dist, num_q, q_pids, g_pids, q_cams, g_cams) -> tuple[float, float, int]:
    """Vectorised per-query loop (precision at the hits only); (rank1 %, mAP %, valid queries)."""
    aps, first_hits = [], []
    for i in range(num_q):
        order = np.argsort(row_dist(i))
        matches = g_pids[order] == q_pids[i]
        raw = matches[~(matches & (g_cams[order] == q_cams[i]))]
        hit_pos = np.flatnonzero(raw)
        if hit_pos.size == 0:
            continue
        first_hits.append(hit_pos[0])
        aps.append(np.mean(np.arange(1, hit_pos.size + 1) / (hit_pos + 1)))
    return 100 * np.mean(np.array(first_hits) == 0), 100 * np.mean(aps), len(aps)


def eval_func_map(row_dist, num_q, q_pids, g_pids, q_cams, g_cams) -> tuple[float, float, int]:
    """reid-strong-baseline's ``eval_func`` loop; returns (rank1 %, mAP %, valid queries).

    Written here from the algorithm (argsort, junk removal, cumulative matches, precision at
    every kept rank from a Python comprehension, AP = sum at the hits / hits), not copied.
    """
    aps, first_hits = [], []
    for i in range(num_q):
        order = np.argsort(row_dist(i))
        same_id = g_pids[order] == q_pids[i]
        raw = same_id[~(same_id & (g_cams[order] == q_cams[i]))].astype(np.int32)
        if not raw.any():
            continue
        cumulative = raw.cumsum()
        first_hits.append(min(int(cumulative[0]), 1))
        precision = np.asarray([hits / (rank + 1.0) for rank, hits in enumerate(cumulative)])
        aps.append((precision * raw).sum() / raw.sum())
    return 100 * np.mean(first_hits), 100 * np.mean(aps), len(aps)


#: Worker method name -> (table label, scoring loop) of each reference.
REFERENCES = {
    'eval_func': ('numpy eval_func loop', eval_func_map),
    'vectorised': ('numpy vectorised loop', reference_map),
}


def feature_rows(q_feats: np.ndarray, g_feats: np.ndarray):
    """Cosine distances of one query to the gallery, row by row: i -> (G,)."""
    return lambda i: 1.0 - g_feats @ q_feats[i]


def worker(args) -> None:
    """One timed measurement; prints a JSON line."""
    torch.manual_seed(0)
    # warm-up: first calls load kernels and start thread pools, which is not what we time
    warm = make_case(16, 256, 8, 4, 2, seed=1)
    cmc_map(1.0 - torch.from_numpy(warm[0] @ warm[1].T), *warm[2:])
    for _, loop in REFERENCES.values():
        loop(feature_rows(warm[0], warm[1]), 16, *warm[2:])
    case = make_case(args.num_q, args.num_g, args.dim, args.ids, args.cams)
    q_feats, g_feats, q_pids, g_pids, q_cams, g_cams = case
    use_distmat = args.num_q * args.num_g <= args.distmat_limit
    subsample = not use_distmat and args.ref_queries < args.num_q
    num_run = args.ref_queries if subsample and args.method != 'promptsg' else args.num_q
    if use_distmat:
        distmat = 1.0 - torch.from_numpy(q_feats) @ torch.from_numpy(g_feats).T
        dist_np = distmat.numpy()
    baseline = status_kib('VmRSS')
    exact_peak = reset_peak_rss()

    start, cpu_start = time.perf_counter(), time.process_time()
    if args.method == 'promptsg':
        ids = (q_pids, g_pids, q_cams, g_cams)
        if use_distmat:
            out = cmc_map(distmat, *ids)
        else:
            out = feature_cmc_map(torch.from_numpy(q_feats), torch.from_numpy(g_feats), *ids)
        rank1, mean_ap, valid = out['rank1'], out['mAP'], out['num_valid_queries']
    else:
        row_dist = dist_np.__getitem__ if use_distmat else feature_rows(q_feats, g_feats)
        loop = REFERENCES[args.method][1]
        rank1, mean_ap, valid = loop(row_dist, num_run, q_pids, g_pids, q_cams, g_cams)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak_mib = (status_kib('VmHWM') - baseline) / 1024 if exact_peak else float('nan')

    check = None
    if args.method == 'promptsg' and subsample:
        # scores on the reference's query subsample, for the agreement check (not timed)
        sub = slice(0, args.ref_queries)
        out = feature_cmc_map(
            torch.from_numpy(q_feats[sub]),
            torch.from_numpy(g_feats),
            q_pids[sub],
            g_pids,
            q_cams[sub],
            g_cams,
        )
        check = out['mAP']
    print(
        json.dumps(
            dict(
                seconds=seconds,
                cpu_seconds=cpu_seconds,
                peak_mib=peak_mib,
                rank1=rank1,
                mAP=float(mean_ap),
                valid=int(valid),
                queries=num_run,
                distmat=use_distmat,
                subsample_mAP=check,
            )
        )
    )


def measure(method: str, num_q: int, num_g: int, args) -> dict:
    cmd = [
        sys.executable,
        __file__,
        '--worker',
        method,
        '--num-q',
        str(num_q),
        '--num-g',
        str(num_g),
        '--dim',
        str(args.dim),
        '--ids',
        str(args.ids),
        '--cams',
        str(args.cams),
        '--ref-queries',
        str(args.ref_queries),
        '--distmat-limit',
        str(args.distmat_limit),
    ]
    env = dict(os.environ)
    if args.threads:
        cmd += ['--threads', str(args.threads)]
        for key in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
            env[key] = str(args.threads)
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def parse_size(text: str) -> tuple[int, int]:
    num_q, num_g = text.lower().split('x')
    return int(num_q), int(num_g)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help=f'large case shrunk to {QUICK_LARGE}')
    parser.add_argument('--sizes', nargs='+', type=parse_size, help='cases as QxG')
    parser.add_argument('--dim', type=int, default=512)
    parser.add_argument('--ids', type=int, default=750)
    parser.add_argument('--cams', type=int, default=6)
    parser.add_argument(
        '--ref-queries',
        type=int,
        default=500,
        help='reference query subsample on feature-input cases',
    )
    parser.add_argument(
        '--distmat-limit',
        type=int,
        default=60_000_000,
        help='largest Q*G scored from a precomputed distance matrix',
    )
    parser.add_argument(
        '--threads',
        type=int,
        default=0,
        help='torch and BLAS threads in every method (0: their defaults)',
    )
    parser.add_argument(
        '--references',
        nargs='+',
        choices=list(REFERENCES),
        default=list(REFERENCES),
        help='which NumPy references to time (default: both)',
    )
    parser.add_argument('--worker', choices=['promptsg', *REFERENCES], help=argparse.SUPPRESS)
    parser.add_argument('--num-q', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--num-g', type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if args.threads:
            torch.set_num_threads(args.threads)
        args.method = args.worker
        worker(args)
        return

    sizes = args.sizes or [MARKET, QUICK_LARGE if args.quick else LARGE]
    rows = []
    for num_q, num_g in sizes:
        fast = measure('promptsg', num_q, num_g, args)
        size, source = f'{num_q}x{num_g}', 'distmat' if fast['distmat'] else 'features'
        rows.append([size, source, 'promptsg cmc_map', fast['seconds'], fast['cpu_seconds']])
        rows[-1] += [fast['peak_mib'], None, None, fast['mAP'], '']
        for method in args.references:
            ref = measure(method, num_q, num_g, args)
            scale = num_q / ref['queries']
            ref_seconds, ref_cpu = ref['seconds'] * scale, ref['cpu_seconds'] * scale
            note = '' if ref['queries'] == num_q else f'{ref["queries"]} queries, extrapolated'
            agree = fast['mAP'] if ref['queries'] == num_q else fast['subsample_mAP']
            note = (note + '; ' if note else '') + f'|dmAP| {abs(agree - ref["mAP"]):.1e}'
            rows.append([size, source, REFERENCES[method][0], ref_seconds, ref_cpu])
            rows[-1] += [ref['peak_mib'], ref_seconds / fast['seconds']]
            rows[-1] += [ref_cpu / fast['cpu_seconds'], ref['mAP'], note]
    threads = args.threads or torch.get_num_threads()
    print(
        f'torch {torch.__version__}, {threads} threads, numpy {np.__version__}, '
        f'{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f}); D={args.dim}, '
        f'{args.ids} ids, {args.cams} cameras, cosine'
    )
    headers = [
        'Q x G',
        'input',
        'method',
        'wall s',
        'CPU s',
        'peak MB',
        'speed-up wall',
        'speed-up CPU',
        'mAP %',
        'note',
    ]
    floatfmt = ('', '', '', '.2f', '.2f', '.0f', '.1f', '.1f', '.3f', '')
    print(tabulate(rows, headers=headers, floatfmt=floatfmt, missingval=''))


if __name__ == '__main__':
    main()
