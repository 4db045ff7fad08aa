"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--work-dir DIR]``.

CHECKPOINT is a checkpoint file or a training work dir, whose best checkpoint (``best_*.pth``)
is then evaluated; a work dir without one is an error, never a silent fall-back to the last.
"""

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import promptsg.registry  # noqa: E402,F401  (a broken import shows its real traceback)
from promptsg.engine.checkpoint import resolve_checkpoint  # noqa: E402
from promptsg.engine.cli import add_run_args, run_cli  # noqa: E402
from promptsg.engine.config import load_config  # noqa: E402
from promptsg.engine.runner import (  # noqa: E402
    build_runner,
    summary_line,
    write_metrics,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a promptsg checkpoint')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        'checkpoint', help='checkpoint file, or a work dir to evaluate its best checkpoint'
    )
    parser.add_argument('--work-dir', help='where the test logs go')
    parser.add_argument('--amp', action='store_true', help='mixed-precision inference')
    add_run_args(parser)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    checkpoint = resolve_checkpoint(args.checkpoint)
    cfg = load_config(args.config, args.cfg_options, args.data_root, args.pretrained)
    cfg.load_from, cfg.resume = checkpoint, False
    if args.amp:
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    runner = build_runner(cfg, args.work_dir, args.launcher)
    print(f'evaluating {checkpoint}', file=sys.stderr)
    metrics = runner.test()
    if runner.rank == 0:
        write_metrics(metrics, osp.join(runner.work_dir, 'test_metrics.json'))
        print(summary_line(metrics))
    return metrics


if __name__ == '__main__':
    run_cli(main)
