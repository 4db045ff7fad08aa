"""Train a model from a config: ``python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]]``."""

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import promptsg.registry  # noqa: E402,F401  (a broken import shows its real traceback)
from promptsg.engine.cli import run_cli  # noqa: E402
from promptsg.engine.runner import (  # noqa: E402
    DictAction,
    build_runner,
    load_config,
    summary_line,
    test_best_checkpoint,
    write_metrics,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a promptsg model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from CKPT, or from the latest checkpoint in the work dir if none is given',
    )
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--no-test', action='store_true', help='skip the final test')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('dtype', 'bfloat16')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    runner = build_runner(cfg, args.work_dir, args.launcher)
    runner.train()
    if not args.no_test and cfg.get('test_dataloader'):
        metrics = test_best_checkpoint(runner)
        write_metrics(metrics, osp.join(runner.work_dir, 'test_metrics.json'))
        print(summary_line(metrics))


if __name__ == '__main__':
    run_cli(main)
