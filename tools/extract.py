"""Embed images: ``python tools/extract.py CONFIG CHECKPOINT INPUT... --out feats.npy``.

INPUT is an image, a folder (searched recursively) or a list (.txt: one path per line; .csv: a
``path`` column and optional ``pid``/``camid``). Writes the features (N, D), L2-normalised, as
``.npy`` or ``.safetensors`` (tensor ``features``), and an index CSV (``index,path,pid,camid``;
pid from a CSV list, a Market-1501 name or the identity folder, empty when unknown).

``--gallery-index FILE`` builds a searchable gallery index (for ``tools/search.py
--gallery-index`` and ``ReIDInferencer.search``) of type ``--index-type`` (flat: exact; ivf,
hnsw, ivfpq: approximate, need faiss) with ``--index-options key=value``; with ``--extend`` the
images are added to an existing index built by the same model (paths already in it are skipped).
``--out`` is then optional.
"""

import argparse
import csv
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402

import promptsg.registry  # noqa: E402,F401  (a broken import shows its real traceback)
from promptsg.apis.images import ImageRecord, collect_images  # noqa: E402
from promptsg.apis.inferencer import merge_camids  # noqa: E402
from promptsg.engine.cli import add_inferencer_args, build_inferencer, run_cli  # noqa: E402
from promptsg.errors import ConfigError  # noqa: E402
from promptsg.retrieval import INDEX_TYPES, GalleryIndex, index_config  # noqa: E402
from promptsg.retrieval.backends import resolve_backend  # noqa: E402

FORMATS = ('.npy', '.safetensors')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Extract ReID embeddings of images')
    add_inferencer_args(parser)
    parser.add_argument('inputs', nargs='+', help='images, folders or .txt/.csv image lists')
    parser.add_argument('--out', help='features file: .npy or .safetensors')
    parser.add_argument('--index', help='index CSV (default: the --out path with .csv)')
    parser.add_argument('--gallery-index', help='build (or --extend) this gallery index file')
    parser.add_argument('--index-type', choices=INDEX_TYPES, default='flat', help='index kind')
    parser.add_argument(
        '--index-options', nargs='+', default=[], metavar='KEY=INT', help='e.g. nlist=1024'
    )
    parser.add_argument(
        '--extend', action='store_true', help='add the images to the existing --gallery-index'
    )
    return parser.parse_args(argv)


def index_options(pairs: list[str], kind: str) -> dict:
    """``['nlist=1024', 'nprobe=16']`` → ``{'type': kind, 'nlist': 1024, 'nprobe': 16}``."""
    cfg = {'type': kind}
    for pair in pairs:
        key, sep, value = pair.partition('=')
        if not sep or not value.strip().isdigit():
            raise ConfigError(f'--index-options {pair}: give KEY=INT, e.g. nlist=1024')
        cfg[key.strip()] = int(value)
    return cfg


def update_gallery_index(args, records: list[ImageRecord], feats, fingerprint: str) -> str:
    """Build or extend ``args.gallery_index``; returns a line saying what was written."""
    path = args.gallery_index
    if args.extend:
        index = GalleryIndex.load(path)
        index.check_query(feats, fingerprint)
        known = {osp.realpath(p) for p in index.paths}
        new = [i for i, r in enumerate(records) if osp.realpath(r.path) not in known]
        if new:
            index.add(
                feats[new],
                [records[i].path for i in new],
                [records[i].pid for i in new],
                [records[i].camid for i in new],
            )
        index.save(path)
        skipped = len(records) - len(new)
        return (
            f'index {path}: {len(new)} images added ({skipped} already in it), {len(index)} in all'
        )
    if osp.exists(path):
        raise ConfigError(
            f'--gallery-index {path} exists: pass --extend to add images, or remove it'
        )
    index = GalleryIndex.build(
        feats,
        [r.path for r in records],
        [r.pid for r in records],
        [r.camid for r in records],
        index_options(args.index_options, args.index_type),
        fingerprint,
    )
    index.save(path)
    return f'index {path}: {index.kind} ({index.backend_name}) of {len(index)} images'


def write_index(records: list[ImageRecord], path: str) -> None:
    """``index,path,pid,camid`` per row of the features."""
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['index', 'path', 'pid', 'camid'])
        for i, r in enumerate(records):
            writer.writerow([i, r.path, '' if r.pid is None else r.pid, r.camid])


def write_features(feats: np.ndarray, path: str, meta: dict[str, str]) -> None:
    if path.endswith('.npy'):
        np.save(path, feats)
    else:
        import torch
        from safetensors.torch import save_file

        save_file({'features': torch.from_numpy(np.ascontiguousarray(feats))}, path, meta)


def main(argv=None) -> np.ndarray:
    args = parse_args(argv)
    if not args.out and not args.gallery_index:
        raise ConfigError('give --out (a features file), --gallery-index (an index file) or both')
    if args.out and not args.out.endswith(FORMATS):
        raise ConfigError(f'--out {args.out}: the file must end with one of {list(FORMATS)}')
    if args.gallery_index and not args.extend and osp.exists(args.gallery_index):
        raise ConfigError(
            f'--gallery-index {args.gallery_index} exists: pass --extend to add images, or remove it'
        )
    if args.extend and not args.gallery_index:
        raise ConfigError('--extend needs --gallery-index (the index to add images to)')
    if args.gallery_index and not args.extend:
        cfg = index_config(index_options(args.index_options, args.index_type))
        resolve_backend(cfg['type'], 'auto')  # bad options or a missing faiss fail before embedding
    records = collect_images(args.inputs)
    inferencer = build_inferencer(args)
    feats = inferencer(
        [r.path for r in records],
        progress=not args.no_progress,
        camids=merge_camids([r.camid for r in records], args.camid),
    )
    if args.out:
        index = args.index or osp.splitext(args.out)[0] + '.csv'
        for path in (args.out, index):
            os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        meta = {
            'config': args.config,
            'checkpoint': inferencer.checkpoint or '',
            'prompt': args.prompt,
            'aspect': args.aspect,
            'num_images': str(len(records)),
        }
        write_features(feats, args.out, meta)
        write_index(records, index)
        print(
            f'{feats.shape[0]} embeddings of dimension {feats.shape[1]} -> {args.out}; index {index}'
        )
    if args.gallery_index:
        print(update_gallery_index(args, records, feats, inferencer.fingerprint))
    return feats


if __name__ == '__main__':
    run_cli(main)
