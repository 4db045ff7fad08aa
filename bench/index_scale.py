"""GalleryIndex at scale: build time, memory, query latency and recall of each index type.

    python bench/index_scale.py            # 1,000,000 x 512 gallery, 1,000 queries
    python bench/index_scale.py --quick    # 100,000 x 512
    python bench/index_scale.py --smoke    # tiny (the tests)

Synthetic gallery: identity prototypes (about 10 images each) plus noise, L2-normalised, D=512;
queries are noisy copies of gallery images. The baseline is exact search (``flat``, faiss
``IndexFlatIP``; the torch fallback is measured too): its top-10 is the ground truth for the
recall of each approximate index (recall@k = share of the exact top-k found in the index's
top-k, averaged over queries; recall@1 = share of queries whose top-1 is the exact top-1).

Figures per index: build seconds (training + adding, through ``GalleryIndex.build``), memory
(growth of resident memory by the built index, and the peak growth while building, VmHWM reset
before each build), latency of one batch of all queries (ms per query) and the median of single
queries searched one at a time. Indexes are built one after the other and freed in between.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import reset_peak_rss, status_kib  # noqa: E402
from promptsg.retrieval import GalleryIndex, import_faiss  # noqa: E402

SIZES = {'full': (1_000_000, 1000), 'quick': (100_000, 1000), 'smoke': (4000, 50)}
#: Index configs per mode; nlist ~ 1 cell per ~1000 images at full size, cells learnt from a
#: 65,536-image sample (64 per cell) so that k-means fits the 2-core machine.
CONFIGS = {
    'full': [
        dict(type='ivf', nlist=1024, nprobe=16, train_size=65536),
        dict(type='ivfpq', nlist=1024, nprobe=16, pq_m=64, pq_bits=8, train_size=65536),
        dict(type='hnsw', m=16, ef_construction=40, ef_search=64),
    ],
    'quick': [
        dict(type='ivf', nlist=256, nprobe=16),
        dict(type='hnsw', m=16, ef_construction=40, ef_search=64),
        dict(type='ivfpq', nlist=256, nprobe=16, pq_m=64, pq_bits=8),
    ],
    'smoke': [
        dict(type='ivf', nlist=16, nprobe=4),
        dict(type='hnsw', m=8, ef_construction=20, ef_search=32),
        dict(type='ivfpq', nlist=16, nprobe=4, pq_m=16, pq_bits=6),
    ],
}
NOISE = 0.8  # around each prototype (unit scale per dimension)
QUERY_NOISE = 0.3


def make_gallery(num: int, num_q: int, dim: int = 512, per_id: int = 10, seed: int = 0):
    """Gallery (N, D) and queries (Q, D), float32, L2-normalised; built in blocks."""
    rng = np.random.default_rng(seed)
    ids = max(1, num // per_id)
    protos = rng.standard_normal((ids, dim), dtype=np.float32)
    gallery = np.empty((num, dim), dtype=np.float32)
    for start in range(0, num, 65536):
        stop = min(start + 65536, num)
        block = protos[rng.integers(0, ids, stop - start)]
        block += NOISE * rng.standard_normal(block.shape, dtype=np.float32)
        gallery[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    picks = rng.choice(num, num_q, replace=False)
    query = gallery[picks] + QUERY_NOISE / np.sqrt(dim) * rng.standard_normal(
        (num_q, dim), dtype=np.float32
    )
    return gallery, query / np.linalg.norm(query, axis=1, keepdims=True)


def measure(cfg: dict, backend: str, gallery, paths, query, singles: int, exact=None) -> dict:
    gc.collect()
    before = status_kib('VmRSS')
    exact_peak = reset_peak_rss()
    start = time.perf_counter()
    index = GalleryIndex.build(gallery, paths, index_cfg=cfg, backend=backend)
    build = time.perf_counter() - start
    peak = (status_kib('VmHWM') - before) / 1024 if exact_peak else float('nan')
    resident = (status_kib('VmRSS') - before) / 1024
    start = time.perf_counter()
    hits = index.search(query, 10)
    batch_ms = 1e3 * (time.perf_counter() - start) / len(query)
    single = []
    for q in range(min(singles, len(query))):
        start = time.perf_counter()
        index.search(query[q : q + 1], 10)
        single.append(1e3 * (time.perf_counter() - start))
    result = dict(
        index=cfg['type'],
        backend=index.backend_name,
        options=', '.join(f'{k}={v}' for k, v in index.cfg.items() if k != 'type'),
        build_s=build,
        resident_mib=resident,
        peak_mib=peak,
        batch_ms_per_query=batch_ms,
        single_ms=statistics.median(single) if single else float('nan'),
        rows=hits.rows,
    )
    if exact is not None:
        result['recall1'] = float((hits.rows[:, 0] == exact[:, 0]).mean())
        result['recall10'] = float(
            np.mean([len(set(a) & set(b)) / 10 for a, b in zip(hits.rows, exact)])
        )
    del index, hits
    gc.collect()
    return result


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--quick', action='store_true', help='100,000 images')
    mode.add_argument('--smoke', action='store_true', help='tiny (tests)')
    parser.add_argument('--singles', type=int, default=100, help='single-query searches timed')
    parser.add_argument('--skip-torch', action='store_true', help='skip the torch fallback')
    parser.add_argument('--json', help='also write the rows to this JSON file')
    args = parser.parse_args(argv)
    mode_name = 'smoke' if args.smoke else 'quick' if args.quick else 'full'
    num, num_q = SIZES[mode_name]
    start = time.perf_counter()
    gallery, query = make_gallery(num, num_q)
    paths = [f'g/{i:07d}.jpg' for i in range(num)]
    print(f'gallery {num} x 512 and {num_q} queries made in {time.perf_counter() - start:.1f} s')
    rows = []
    have_faiss = import_faiss() is not None
    exact_backend = 'faiss' if have_faiss else 'torch'
    baseline = measure({'type': 'flat'}, exact_backend, gallery, paths, query, args.singles)
    exact = baseline['rows']
    rows.append(baseline)
    print(f'done: {json.dumps({k: v for k, v in baseline.items() if k != "rows"})}', flush=True)
    if have_faiss and not args.skip_torch:
        rows.append(measure({'type': 'flat'}, 'torch', gallery, paths, query, args.singles, exact))
    if have_faiss:
        for cfg in CONFIGS[mode_name]:
            rows.append(measure(cfg, 'faiss', gallery, paths, query, args.singles, exact))
            done = {k: v for k, v in rows[-1].items() if k != 'rows'}
            print(f'done: {json.dumps(done)}', flush=True)
    else:
        print('faiss is not installed: only the exact torch index (pip install faiss-cpu)')
    base = rows[0]
    table = []
    for r in rows:
        r.pop('rows')
        speed = base['batch_ms_per_query'] / r['batch_ms_per_query']
        table.append(
            [
                r['index'], r['backend'], r['options'], f"{r['build_s']:.1f}",
                f"{r['resident_mib']:.0f}", f"{r['peak_mib']:.0f}",
                f"{r['batch_ms_per_query']:.3f}", f"{r['single_ms']:.2f}",
                f"{r.get('recall1', 1.0):.3f}", f"{r.get('recall10', 1.0):.3f}",
                'baseline (exact)' if r is base else f'{speed:.1f}x exact batch speed',
            ]
        )  # fmt: skip
    print(
        f'\nGalleryIndex, {num} x 512 gallery, {num_q} queries, top-10, '
        f'{os.cpu_count()} cores (faiss {"installed" if have_faiss else "absent"})\n'
    )
    headers = [
        'index', 'backend', 'options', 'build s', 'index MB', 'build peak MB',
        'ms/query (batch)', 'ms (1 query)', 'recall@1', 'recall@10', 'vs exact',
    ]  # fmt: skip
    print(tabulate(table, headers=headers, tablefmt='github', disable_numparse=True))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == '__main__':
    main()
