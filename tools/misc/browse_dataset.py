"""Look at the data a config trains and tests on.

    python tools/misc/browse_dataset.py CONFIG [--data-root DIR] [--grid samples.png]

Prints the statistics table (ids, images, cameras) of each configured split (train, val,
test) and, with ``--grid``, draws P identities × K images of the training set as the training
pipeline delivers them (augmented and resized, before the model's normalisation) to a PNG.
"""

import argparse
import logging
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmengine.logging import MMLogger  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402

import promptsg.registry  # noqa: E402,F401  (a broken import shows its real traceback)
from promptsg.analysis.dataset_view import pick_samples, pipeline_image, sample_grid  # noqa: E402
from promptsg.datasets.statistics import dataset_statistics, format_statistics  # noqa: E402
from promptsg.engine.cli import run_cli  # noqa: E402
from promptsg.engine.config import LOADERS, DictAction, load_config  # noqa: E402
from promptsg.errors import ConfigError  # noqa: E402
from promptsg.registry import DATASETS  # noqa: E402

SPLITS = {loader.split('_')[0]: loader for loader in LOADERS}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Statistics and samples of a configured data set')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--splits', nargs='+', choices=list(SPLITS), default=list(SPLITS), help='loaders to show'
    )
    parser.add_argument('--grid', help='draw training samples after the pipeline to this PNG')
    parser.add_argument('--ids', type=int, default=8, help='identities in the grid (rows)')
    parser.add_argument('--per-id', type=int, default=4, help='images per identity (columns)')
    parser.add_argument('--seed', type=int, default=0, help='which identities and images')
    parser.add_argument('--data-root', help="set every data loader's dataset.data_root")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args(argv)


def build_dataset(cfg, loader: str, with_pipeline: bool):
    """The loader's data set, without logging its statistics (this tool prints them)."""
    dataset_cfg = dict(cfg[loader]['dataset'])
    if not with_pipeline:
        dataset_cfg['pipeline'] = []
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'promptsg')):
            return DATASETS.build(dataset_cfg)
    finally:
        logger.setLevel(level)


def main(argv=None) -> list:
    args = parse_args(argv)
    if args.grid and not args.grid.lower().endswith('.png'):
        raise ConfigError(f'--grid {args.grid}: the grid is written as PNG (name it *.png)')
    if min(args.ids, args.per_id) < 1:
        raise ConfigError('--ids and --per-id must be >= 1')
    cfg = load_config(args.config, args.cfg_options, args.data_root)
    tables = []
    for split in args.splits:
        loader = SPLITS[split]
        if not cfg.get(loader):
            print(f'({loader}: not configured)\n')
            continue
        dataset = build_dataset(cfg, loader, with_pipeline=False)
        rows = dataset_statistics(dataset)
        tables.append((split, rows))
        print(format_statistics(f'{type(dataset).__name__} ({loader})', rows) + '\n')
    if args.grid:
        if not cfg.get('train_dataloader'):
            raise ConfigError(
                '--grid draws the training set, but train_dataloader is not configured'
            )
        dataset = build_dataset(cfg, 'train_dataloader', with_pipeline=True)
        picked = pick_samples(dataset, args.ids, args.per_id, args.seed)
        rows: dict[int, list] = {}
        for idx in picked:
            sample = dataset[idx]
            info = sample['data_samples']
            camid = info.get('camid', -1)
            text = f'pid {info["pid"]}' + (f' cam {camid}' if camid >= 0 else '')
            rows.setdefault(int(info['pid']), []).append((pipeline_image(sample), text))
        sizes = {image.shape for row in rows.values() for image, _ in row}
        if len(sizes) > 1:
            raise ConfigError(
                f'the training pipeline gives images of several sizes {sorted(sizes)}: '
                'add a Resize to draw them in one grid'
            )
        grid = sample_grid(list(rows.values()))
        os.makedirs(osp.dirname(osp.abspath(args.grid)), exist_ok=True)
        grid.save(args.grid, format='PNG')
        h, w = next(iter(sizes))[:2]
        print(
            f'{len(picked)} training samples ({len(rows)} identities, one per row; {h}x{w} '
            f'after the training pipeline) -> {args.grid}'
        )
    return tables


if __name__ == '__main__':
    run_cli(main)
