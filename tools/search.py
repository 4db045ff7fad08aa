"""Search a gallery: ``python tools/search.py CONFIG CHECKPOINT --query Q --gallery G``.

Q and G are images, folders (searched recursively) or .txt/.csv lists; ``--gallery-index FILE``
searches an index saved by ``tools/extract.py --gallery-index`` instead of embedding a gallery
(it must come from the same model). As in the ReID metric, gallery images with the query's pid
and camera are ignored when cameras are known (``--no-camera-filter`` keeps them), and the
printed top-1 share counts the queries with a correct match left, so it equals the metric's
Rank-1 on the same features; the line says which rule applied. Writes the top-k gallery
images of every query to a CSV (``query,query_pid,rank,gallery,gallery_pid,score,match``) and,
with ``--grid``, a PNG with one row per query: the query (blue border) then its top-k, bordered
green when the identity matches, red when it does not, grey when an identity is unknown. Pids come
from a CSV list's ``pid`` column, Market-1501 names or identity folders.
"""

import argparse
import csv
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import promptsg.registry  # noqa: E402,F401  (a broken import shows its real traceback)
from promptsg.apis.grid import draw_result_grid  # noqa: E402
from promptsg.apis.images import ImageRecord, collect_images  # noqa: E402
from promptsg.apis.inferencer import merge_camids  # noqa: E402
from promptsg.apis.retrieval import (  # noqa: E402
    UNKNOWN,
    SearchResult,
    index_records,
    search_index,
)
from promptsg.engine.cli import add_inferencer_args, build_inferencer, run_cli  # noqa: E402
from promptsg.errors import ConfigError  # noqa: E402
from promptsg.retrieval import GalleryIndex  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Search a gallery for each query image')
    add_inferencer_args(parser)
    parser.add_argument('--query', nargs='+', required=True, help='query images/folders/lists')
    gallery = parser.add_mutually_exclusive_group(required=True)
    gallery.add_argument('--gallery', nargs='+', help='gallery images/folders/lists')
    gallery.add_argument('--gallery-index', help='a gallery index file from tools/extract.py')
    parser.add_argument('--topk', type=int, default=5, help='results per query')
    parser.add_argument('--out', default='search_results.csv', help='results CSV')
    parser.add_argument('--grid', help='also draw the results as this PNG')
    parser.add_argument('--grid-rows', type=int, default=10, help='queries drawn in the grid')
    parser.add_argument(
        '--thumb-size', type=int, nargs=2, default=(128, 64), metavar=('H', 'W'), help='cell size'
    )
    parser.add_argument(
        '--keep-self', action='store_true', help='allow a query to find its own file'
    )
    parser.add_argument(
        '--no-camera-filter',
        action='store_true',
        help="keep gallery images with the query's pid and camera (the metric ignores them)",
    )
    return parser.parse_args(argv)


def write_results(
    query: list[ImageRecord], gallery: list[ImageRecord], result: SearchResult, path: str
) -> None:
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['query', 'query_pid', 'rank', 'gallery', 'gallery_pid', 'score', 'match'])
        for q, record in enumerate(query):
            for j, g in enumerate(result.indices[q]):
                if g < 0:
                    continue
                match = int(result.matches[q, j])
                writer.writerow(
                    [
                        record.path,
                        record.pid or '',
                        j + 1,
                        gallery[g].path,
                        gallery[g].pid or '',
                        f'{result.scores[q, j]:.6f}',
                        '' if match == UNKNOWN else match,
                    ]
                )


def cameras(records: list[ImageRecord], args: argparse.Namespace) -> list[int]:
    """The records' camera ids, ``--camid`` where they are unknown (for an SIE model)."""
    return merge_camids([r.camid for r in records], args.camid)


def main(argv=None) -> SearchResult:
    args = parse_args(argv)
    if args.topk < 1:
        raise ConfigError(f'--topk must be >= 1, got {args.topk}')
    if args.grid and not args.grid.lower().endswith('.png'):
        raise ConfigError(f'--grid {args.grid}: the grid is written as PNG (name it *.png)')
    query = collect_images(args.query)
    index = GalleryIndex.load(args.gallery_index) if args.gallery_index else None
    gallery = None if index else collect_images(args.gallery)
    inferencer = build_inferencer(args)
    progress = not args.no_progress
    q_feats = inferencer([r.path for r in query], progress=progress, camids=cameras(query, args))
    fingerprint = inferencer.fingerprint if index else None
    if index is None:
        g_feats = inferencer(
            [r.path for r in gallery], progress=progress, camids=cameras(gallery, args)
        )
        index = GalleryIndex.build(
            g_feats, [r.path for r in gallery], [r.pid for r in gallery],
            [r.camid for r in gallery], backend='torch',
        )  # fmt: skip
    result = search_index(
        query, q_feats, index, args.topk, not args.keep_self, not args.no_camera_filter, fingerprint
    )
    gallery = index_records(index)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    write_results(query, gallery, result, args.out)
    print(f'{len(query)} queries x {len(gallery)} gallery images, top-{args.topk} -> {args.out}')
    returned = (result.indices >= 0).sum(1)
    if int(returned.min()) < args.topk:
        low, high = int(returned.min()), int(returned.max())
        count = str(low) if low == high else f'{low} to {high}'
        print(
            f'top-{args.topk} requested: returned {count} per query (the gallery has '
            f'{len(gallery)} images; {result.rule})'
        )
    summary = result.top1_summary()
    if summary:
        print(summary)
    if args.grid:
        os.makedirs(osp.dirname(osp.abspath(args.grid)), exist_ok=True)
        grid = draw_result_grid(query, gallery, result, args.grid_rows, tuple(args.thumb_size))
        grid.save(args.grid, format='PNG')
        print(f'grid of {min(args.grid_rows, len(query))} queries -> {args.grid}')
    return result


if __name__ == '__main__':
    run_cli(main)
