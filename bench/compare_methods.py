"""The plain CLIP baseline, CLIP-ReID and PromptSG trained at an equal budget on the same data.

    python bench/compare_methods.py                       # cuhk03_mini, tiny ViT, CPU
    python bench/compare_methods.py --epochs 20 --prompt-epochs 10 --json out.json

One data pipeline, one metric and one seed for all three: each method's config is the tiny
CUHK03-mini one (``configs/promptsg/promptsg_tiny-rn_1xb32_cuhk03-mini.py``, the baseline being
the same with ``ReIDBaseline`` as the model, and
``configs/clip_reid/clip-reid_tiny-vit_1xb32_cuhk03-mini.py``), all three on CLIP-ReID's tiny
backbone (tiny-vit), trained through the Runner as
``tools/train.py`` does. The equal budget is the image encoder's: every method trains it for
``--epochs`` epochs with the same optimiser schedule (Adam lr 1e-3, x0.1 after a third and two
thirds); CLIP-ReID first runs ``--prompt-epochs`` prompt epochs with the encoder frozen, whose
time is reported on its own row. Validation (held-out training ids) runs every epoch and picks
the checkpoint that is tested, without early stopping. Figures: test Rank-1 and mAP (standard
AP, the Market protocol), the median seconds per training epoch (validation excluded; a stage's
first epoch includes its caching), and the parameters the optimiser updates.
"""

from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from tabulate import tabulate  # noqa: E402

from bench.harness import DEFAULT_THREADS, REPO, machine  # noqa: E402
from promptsg.engine.cli import run_cli  # noqa: E402
from promptsg.engine.config import load_config  # noqa: E402
from promptsg.engine.runner import build_runner, test_best_checkpoint  # noqa: E402
from promptsg.errors import DataError  # noqa: E402

PROMPTSG_CONFIG = REPO / 'configs' / 'promptsg' / 'promptsg_tiny-rn_1xb32_cuhk03-mini.py'
CLIP_REID_CONFIG = REPO / 'configs' / 'clip_reid' / 'clip-reid_tiny-vit_1xb32_cuhk03-mini.py'
DATA_ROOT = REPO.parent / 'shared' / 'data' / 'cuhk03_mini'
METHODS = ('baseline', 'clip_reid', 'promptsg')


class EpochTimer(Hook):
    """Wall-clock seconds of every training epoch (validation excluded), by stage."""

    priority = 'HIGHEST'  # starts before a stage's caching, so the cache is counted

    def __init__(self, stage_of=None) -> None:
        self.seconds: list[tuple[str, float]] = []
        self.stage_of = stage_of or (lambda epoch: 'train')
        self._start = 0.0

    def before_train_epoch(self, runner) -> None:
        self._start = time.perf_counter()

    def after_train_epoch(self, runner) -> None:
        self.seconds.append((self.stage_of(runner.epoch), time.perf_counter() - self._start))


def trained_params(optim_wrapper) -> dict[str, int]:
    """Parameters each optimiser updates, by stage ('train' for a single optimiser)."""
    wrappers = dict(optim_wrapper.items()) if hasattr(optim_wrapper, 'items') else None
    wrappers = wrappers or {'train': optim_wrapper}
    return {
        name: sum(p.numel() for g in w.optimizer.param_groups for p in g['params'])
        for name, w in wrappers.items()
    }


def method_config(method: str, epochs: int, prompt_epochs: int, data_root: str, work_dir: str):
    """The config of ``method`` at the common budget, validation every epoch, no early stop."""
    milestones = [max(1, epochs // 3), max(2, 2 * epochs // 3)]
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    options = {f'{k}.num_workers': 0 for k in loaders}
    options['default_hooks.early_stopping'] = None
    options['default_hooks.logger.interval'] = 50
    options['log_level'] = 'WARNING'
    if method == 'clip_reid':
        cfg = load_config(str(CLIP_REID_CONFIG), options, data_root)
        total = prompt_epochs + epochs
        cfg.train_cfg.update(max_epochs=total, val_begin=prompt_epochs + 1)
        cfg.custom_hooks[0].stages = [
            dict(name='prompt', epochs=prompt_epochs, cache_features=True),
            dict(name='image', epochs=epochs),
        ]
        prompt = cfg.param_scheduler['prompt']  # warm-up 3 epochs, then cosine
        if prompt_epochs > 3:
            prompt[1].end = prompt_epochs
        else:
            cfg.param_scheduler['prompt'] = []  # too short to warm up: constant lr
        cfg.param_scheduler['image'][0].update(
            milestones=milestones, begin=prompt_epochs, end=total
        )
    else:
        cfg = load_config(str(PROMPTSG_CONFIG), options, data_root)
        # one backbone for every method: CLIP-ReID's (the same arch, input size and weights)
        cfg.model.backbone = load_config(str(CLIP_REID_CONFIG)).model.backbone
        cfg.train_cfg.max_epochs = epochs
        cfg.param_scheduler[0].milestones = milestones
        if method == 'baseline':
            backbone = dict(cfg.model.backbone, with_text=False)
            cfg.model = dict(
                type='ReIDBaseline',
                num_classes=None,
                backbone=backbone,
                neck=cfg.model.neck,
                head=cfg.model.head,
                losses=dict(ce=cfg.model.losses.ce, triplet=cfg.model.losses.triplet),
            )
    cfg.experiment_name = f'compare_{method}_{uuid.uuid4().hex[:8]}'
    cfg.work_dir = work_dir
    return cfg


def run_method(method: str, epochs: int, prompt_epochs: int, data_root: str, work_dir: str):
    """Train, test the best checkpoint; the table rows of ``method``."""
    cfg = method_config(method, epochs, prompt_epochs, data_root, work_dir)
    runner = build_runner(cfg, work_dir)
    stage_of = None
    if method == 'clip_reid':
        stage_of = lambda epoch: 'prompt' if epoch < prompt_epochs else 'image'  # noqa: E731
    timer = EpochTimer(stage_of)
    runner.register_hook(timer)
    runner.train()
    params = trained_params(runner.optim_wrapper)
    metrics = test_best_checkpoint(runner)
    rows = []
    for stage in dict.fromkeys(s for s, _ in timer.seconds):
        seconds = [t for s, t in timer.seconds if s == stage]
        label = {'train': method, 'prompt': f'{method} (stage 1: prompts)'}.get(
            stage, f'{method} (stage 2: image)'
        )
        final = stage != 'prompt'
        rows.append(
            dict(
                method=label,
                epochs=len(seconds),
                rank1=metrics['reid/rank1'] if final else None,
                mAP=metrics['reid/mAP'] if final else None,
                s_per_epoch=statistics.median(seconds),
                params_trained=params.get(stage, params.get('train')),
            )
        )
    return rows


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--epochs', type=int, default=15, help='image-encoder epochs per method')
    parser.add_argument(
        '--prompt-epochs', type=int, default=10, help="CLIP-ReID's stage-1 (prompt) epochs"
    )
    parser.add_argument('--data-root', default=str(DATA_ROOT), help='the cuhk03_mini folder')
    parser.add_argument('--methods', nargs='+', choices=METHODS, default=list(METHODS))
    parser.add_argument('--threads', type=int, default=DEFAULT_THREADS, help='CPU threads')
    parser.add_argument('--work-dir', help='keep the work dirs here (default: a temporary one)')
    parser.add_argument('--json', help='also write the rows to this JSON file')
    return parser.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    if not Path(args.data_root, 'bounding_box_train').is_dir():
        raise DataError(
            f'{args.data_root} is not a Market-layout data set (no bounding_box_train/)'
        )
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.work_dir or tmp
        for method in args.methods:
            rows += run_method(
                method, args.epochs, args.prompt_epochs, args.data_root, osp.join(root, method)
            )
    table = tabulate(
        [
            [
                r['method'],
                r['epochs'],
                '' if r['rank1'] is None else f'{r["rank1"]:.2f}',
                '' if r['mAP'] is None else f'{r["mAP"]:.2f}',
                f'{r["s_per_epoch"]:.2f}',
                f'{r["params_trained"]:,}',
            ]
            for r in rows
        ],
        headers=['method', 'epochs', 'Rank-1', 'mAP', 's / epoch', 'params trained'],
        tablefmt='github',
        disable_numparse=True,
    )
    print(f'Equal budget on {args.data_root}: {args.epochs} image-encoder epochs each')
    print(table)
    print(f'machine: {machine("cpu", args.threads)}; load avg before {load_before[0]:.1f}')
    if args.json:
        Path(args.json).write_text(json.dumps(dict(rows=rows, machine=machine()), indent=2))
    return rows


if __name__ == '__main__':
    run_cli(main)
