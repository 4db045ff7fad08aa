"""Train a model from a config: ``python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]]``.

At the end the best checkpoint (kept by ``default_hooks.checkpoint.save_best``) is tested and
its metrics written to ``WORK_DIR/test_metrics.json``. One run at a time holds a work dir; a
work dir with a previous run needs ``--resume`` or ``--overwrite`` (which moves it aside).
"""

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import promptsg.registry  # noqa: E402,F401  (a broken import shows its real traceback)
from promptsg.engine.checkpoint import latest_checkpoint  # noqa: E402
from promptsg.engine.cli import add_run_args, run_cli  # noqa: E402
from promptsg.engine.config import load_config  # noqa: E402
from promptsg.engine.hooks.checkpoint_meta import ResumedOptionsHook  # noqa: E402
from promptsg.engine.runner import (  # noqa: E402
    build_runner,
    check_datasets,
    resolve_work_dir,
    summary_line,
    test_best_checkpoint,
    write_metrics,
)
from promptsg.engine.workdir import claim_work_dir  # noqa: E402
from promptsg.errors import ConfigError, RunInterrupted  # noqa: E402
from promptsg.optional import check_vis_backends  # noqa: E402

AMP_DTYPES = {'bf16': 'bfloat16', 'fp16': 'float16'}


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
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='start afresh in a work dir that holds a run, moving that run to WORK_DIR.prev-<time>',
    )
    parser.add_argument(
        '--amp',
        nargs='?',
        const='bf16',
        choices=sorted(AMP_DTYPES),
        help='mixed-precision training: bf16 (default) or fp16 (with a gradient scaler)',
    )
    parser.add_argument('--tensorboard', action='store_true', help='also log to TensorBoard')
    parser.add_argument('--no-test', action='store_true', help='skip the final test')
    add_run_args(parser)
    return parser.parse_args(argv)


def add_tensorboard(cfg) -> None:
    """Add mmengine's TensorBoard backend to the visualizer (checked by ``check_vis_backends``)."""
    backends = list(cfg.visualizer.get('vis_backends') or [])
    if not any(b.get('type') == 'TensorboardVisBackend' for b in backends):
        backends.append(dict(type='TensorboardVisBackend'))
    cfg.visualizer.vis_backends = backends


def interrupted(runner, config: str) -> RunInterrupted:
    """Where a Ctrl-C stopped the run, and the command that continues it."""
    work_dir = runner.work_dir
    where = f'in epoch {runner.epoch + 1} after {runner.iter} iterations'
    last = latest_checkpoint(work_dir)
    if last is None:
        return RunInterrupted(f'interrupted {where}; no checkpoint was written yet in {work_dir}')
    return RunInterrupted(
        f'interrupted {where}; the last checkpoint is {last}: continue with '
        f'python tools/train.py {config} --work-dir {work_dir} --resume'
    )


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.resume and args.overwrite:
        raise ConfigError('--resume and --overwrite exclude each other: continue or start afresh')
    cfg = load_config(args.config, args.cfg_options, args.data_root, args.pretrained)
    if args.amp:
        if not cfg.get('optim_wrapper'):
            raise ConfigError('--amp needs an optim_wrapper in the config')
        cfg.optim_wrapper.dtype = AMP_DTYPES[args.amp]
    if args.tensorboard:
        add_tensorboard(cfg)
    check_vis_backends(cfg)  # a missing logging package stops the run before the work dir exists
    work_dir = resolve_work_dir(cfg, args.work_dir)
    with claim_work_dir(work_dir, resume=args.resume is not None, overwrite=args.overwrite):
        loaders = ['train_dataloader', 'val_dataloader'] + (
            [] if args.no_test else ['test_dataloader']
        )
        datasets = check_datasets(cfg, loaders)
        runner = build_runner(cfg, work_dir, args.launcher, resume=args.resume, datasets=datasets)
        if args.resume and args.cfg_options:
            runner.register_hook(ResumedOptionsHook(args.cfg_options))
        try:
            train_and_test(runner, cfg, args.no_test)
        except KeyboardInterrupt:
            raise interrupted(runner, args.config) from None


def train_and_test(runner, cfg, no_test: bool) -> None:
    """Train; then test the best checkpoint and write ``test_metrics.json`` (unless ``no_test``)."""
    runner.train()
    if not no_test and cfg.get('test_dataloader'):
        metrics = test_best_checkpoint(runner)
        if runner.rank == 0:
            write_metrics(metrics, osp.join(runner.work_dir, 'test_metrics.json'))
            print(summary_line(metrics))


if __name__ == '__main__':
    run_cli(main)
