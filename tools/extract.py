"""Embed images: ``python tools/extract.py CONFIG CHECKPOINT INPUT... --out feats.npy``.

INPUT is an image, a folder (searched recursively) or a list (.txt: one path per line; .csv: a
``path`` column and optional ``pid``/``camid``). Writes the features (N, D), L2-normalised, as
``.npy`` or ``.safetensors`` (tensor ``features``), and an index CSV (``index,path,pid,camid``;
pid from a CSV list, a Market-1501 name or the identity folder, empty when unknown).
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
from promptsg.engine.cli import add_inferencer_args, build_inferencer, run_cli  # noqa: E402
from promptsg.errors import ConfigError  # noqa: E402

FORMATS = ('.npy', '.safetensors')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Extract ReID embeddings of images')
    add_inferencer_args(parser)
    parser.add_argument('inputs', nargs='+', help='images, folders or .txt/.csv image lists')
    parser.add_argument('--out', required=True, help='features file: .npy or .safetensors')
    parser.add_argument('--index', help='index CSV (default: the --out path with .csv)')
    return parser.parse_args(argv)


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
    if not args.out.endswith(FORMATS):
        raise ConfigError(f'--out {args.out}: the file must end with one of {list(FORMATS)}')
    index = args.index or osp.splitext(args.out)[0] + '.csv'
    records = collect_images(args.inputs)
    inferencer = build_inferencer(args)
    feats = inferencer([r.path for r in records], progress=not args.no_progress)
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
    print(f'{feats.shape[0]} embeddings of dimension {feats.shape[1]} -> {args.out}; index {index}')
    return feats


if __name__ == '__main__':
    run_cli(main)
