"""Training overhead: a PromptSG iteration through the mmengine Runner vs a hand-written loop.

    python bench/train_overhead.py --quick
    python bench/train_overhead.py --device cuda --amp --archs ViT-B-16 RN50 --batch-size 64

The Runner is built as ``tools/train.py`` builds it (``build_runner`` on the quick-start config:
its optimiser wrapper, clipping and hooks), with an iteration-based loop, a per-iteration LR
warm-up, no validation, and a data loader that yields one fixed batch. After every ``inner``
Runner iterations a hook times ``inner`` iterations of :class:`HandLoop` on the same model,
optimiser and batch, so the two alternate (Runner block, hand block, Runner block, ...). A Runner
block is the wall time from the end of the previous hand block to the end of its last
``after_train_iter``: loop, data fetch, ``train_step`` and every hook. Target: ratio <= 1.05.
"""

from __future__ import annotations

import argparse
import os.path as osp
import statistics
import sys
import tempfile
import time
import uuid

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402

from bench.hand_loop import HandLoop  # noqa: E402
from bench.harness import (  # noqa: E402
    add_common_args,
    check_runner_device,
    device_of,
    figure,
    paired_ratio,
    ratio_figure,
    report,
    settings,
    sync,
    time_figure,
)
from bench.workloads import (  # noqa: E402
    NUM_CLASSES,
    QUICKSTART,
    case_name,
    model_cfg,
    synthetic_batch,
)
from promptsg.engine.cli import run_cli  # noqa: E402
from promptsg.engine.config import DictAction, load_config  # noqa: E402
from promptsg.engine.runner import build_runner  # noqa: E402
from promptsg.registry import DATASETS, FUNCTIONS  # noqa: E402

BENCH = 'train_overhead'
DEFAULTS = {
    'smoke': dict(
        archs=['tiny-vit'], batch_size=8, img_size=[64, 32], repeats=2, warmup=1, inner=1
    ),
    'quick': dict(
        archs=['tiny-vit'], batch_size=32, img_size=[256, 128], repeats=15, warmup=2, inner=2
    ),
    'full': dict(
        archs=['tiny-vit', 'tiny-rn'],
        batch_size=32,
        img_size=[256, 128],
        repeats=20,
        warmup=2,
        inner=3,
    ),
}


@DATASETS.register_module(force=True)
class BenchRepeatedBatch(Dataset):
    """``length`` copies of one synthetic P×K batch (load with ``batch_size=1`` and
    ``collate_fn=dict(type='promptsg.bench_first_item')``)."""

    def __init__(
        self,
        batch_size: int,
        img_size: tuple[int, int],
        length: int,
        num_classes: int = NUM_CLASSES,
        seed: int = 0,
    ) -> None:
        self.batch = synthetic_batch(batch_size, tuple(img_size), seed)
        self.length = length
        self.metainfo = dict(num_classes=num_classes)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return self.batch


@FUNCTIONS.register_module(force=True)
def bench_first_item(items: list[dict]) -> dict:
    """Collate a one-item list into its item (the item is already a batch)."""
    return items[0]


class InterleaveHook(Hook):
    """After every ``inner`` Runner iterations, time that block and then ``inner`` hand steps."""

    priority = 'LOWEST'

    def __init__(self, hand_step: HandLoop, inner: int, device: torch.device) -> None:
        self.hand_step, self.inner, self.device = hand_step, inner, device
        self.runner_times: list[float] = []
        self.hand_times: list[float] = []
        self._start = 0.0

    def before_train_epoch(self, runner) -> None:
        sync(self.device)
        self._start = time.perf_counter()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if (batch_idx + 1) % self.inner:
            return
        sync(self.device)
        now = time.perf_counter()
        self.runner_times.append((now - self._start) / self.inner)
        for _ in range(self.inner):
            self.hand_step()
        sync(self.device)
        end = time.perf_counter()
        self.hand_times.append((end - now) / self.inner)
        self._start = end


def runner_config(
    arch: str,
    batch_size: int,
    img_size: tuple[int, int],
    max_iters: int,
    amp: bool,
    cfg_options: dict | None = None,
) -> Config:
    """The quick-start config with this model, a repeated-batch loader and an iteration loop.

    Everything else (optimiser, wrapper, clipping, hooks, logging) stays the quick start's;
    ``tools/train.py --amp bf16`` is mirrored by ``optim_wrapper.dtype='bfloat16'``. No
    validation runs, so early stopping is off and checkpoints are not written.
    ``cfg_options`` are merged last (unchecked, so they may add keys such as
    ``optim_wrapper.nonfinite``).
    """
    cfg = load_config(str(QUICKSTART))
    cfg.model = model_cfg('promptsg', arch, img_size)
    cfg.train_dataloader = dict(
        batch_size=1,
        num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='promptsg.bench_first_item'),
        dataset=dict(
            type='BenchRepeatedBatch', batch_size=batch_size, img_size=img_size, length=max_iters
        ),
    )
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator'):
        cfg[key] = None
    for key in ('test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=max_iters)
    ]
    checkpoint = dict(cfg.default_hooks.checkpoint)
    for key in ('save_best', 'rule', 'max_keep_ckpts'):
        checkpoint.pop(key, None)
    checkpoint.update(interval=max_iters + 1, by_epoch=False, save_last=False)
    cfg.default_hooks.checkpoint = checkpoint
    if 'early_stopping' in cfg.default_hooks:
        cfg.default_hooks.early_stopping = None
    cfg.log_processor = dict(cfg.log_processor, by_epoch=False)
    cfg.log_level = 'WARNING'
    cfg.experiment_name = f'bench_{uuid.uuid4().hex[:12]}'
    if amp:
        cfg.optim_wrapper.dtype = 'bfloat16'
    cfg.merge_from_dict(cfg_options or {})
    return cfg


def measure(
    arch: str,
    batch_size: int,
    img_size: tuple[int, int],
    repeats: int,
    warmup: int,
    inner: int,
    device: torch.device,
    amp: bool,
    cfg_options: dict | None = None,
) -> list[dict]:
    """Build the Runner, train ``(warmup + repeats) * inner`` iterations, return the figures."""
    max_iters = (warmup + repeats) * inner
    cfg = runner_config(arch, batch_size, img_size, max_iters, amp, cfg_options)
    clip_grad = cfg.optim_wrapper.get('clip_grad') or {}
    with tempfile.TemporaryDirectory(prefix='promptsg_bench_') as work_dir:
        runner = build_runner(cfg, work_dir)
        # The hand loop shares the Runner's model, optimiser (same param groups) and batch.
        runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
        batch = runner.train_dataloader.dataset.batch
        hand = HandLoop(
            runner.model,
            runner.optim_wrapper.optimizer,
            batch,
            max_norm=clip_grad.get('max_norm'),
            amp_dtype=torch.bfloat16 if amp else None,
        )
        hook = InterleaveHook(hand, inner, device)
        runner.register_hook(hook)
        runner.train()
        wrapper = type(runner.optim_wrapper).__name__
    runner_times, hand_times = hook.runner_times[warmup:], hook.hand_times[warmup:]
    case = case_name(arch, batch_size, img_size, amp)
    per_round = f'{inner} iterations per round'
    return [
        time_figure(BENCH, case, 'Runner iteration', runner_times, f'{per_round}; {wrapper}'),
        time_figure(BENCH, case, 'hand-written loop iteration', hand_times, per_round),
        ratio_figure(
            BENCH,
            case,
            'overhead Runner / hand loop',
            paired_ratio(runner_times, hand_times),
            'target <= 1.05',
        ),
        figure(
            BENCH,
            case,
            'Runner training throughput',
            batch_size / statistics.median(runner_times),
            'img/s',
        ),
    ]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    add_common_args(parser)
    parser.add_argument('--archs', nargs='+', help='CLIP archs (tiny-vit, tiny-rn, ViT-B-16, RN50)')
    parser.add_argument('--batch-size', type=int, help='images per batch (multiple of 4)')
    parser.add_argument('--img-size', type=int, nargs=2, metavar=('H', 'W'), help='input size')
    parser.add_argument('--repeats', type=int, help='timed rounds')
    parser.add_argument('--warmup', type=int, help='untimed rounds first')
    parser.add_argument('--inner', type=int, help='iterations per round and side')
    parser.add_argument('--amp', action='store_true', help='bf16 autocast (as train.py --amp bf16)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override quick-start config keys, e.g. optim_wrapper.nonfinite=off',
    )
    return parser.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    device = device_of(args)
    opts = settings(args, DEFAULTS)
    check_runner_device(device)
    rows = []
    for arch in opts['archs']:
        rows += measure(
            arch,
            opts['batch_size'],
            tuple(opts['img_size']),
            opts['repeats'],
            opts['warmup'],
            opts['inner'],
            device,
            args.amp,
            args.cfg_options,
        )
    report('Training overhead: mmengine Runner vs hand-written loop', rows, device, args.json)
    return rows


if __name__ == '__main__':
    run_cli(main)
