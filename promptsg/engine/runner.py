"""Runner building and result reporting shared by ``tools/train.py`` and ``tools/test.py``
(config reading lives in :mod:`promptsg.engine.config`)."""

from __future__ import annotations

import datetime
import json
import logging
import os
import os.path as osp
from collections.abc import Mapping

import torch
from mmengine.config import Config
from mmengine.dist import barrier
from mmengine.logging import print_log
from mmengine.runner import Runner

from promptsg.engine.checkpoint import latest_checkpoint
from promptsg.engine.config import (
    complete_gpu_defaults,
    complete_optim_wrapper,
    fill_num_classes,
    sync_sampler_batch_size,
)
from promptsg.engine.fileio import atomic_write
from promptsg.errors import CheckpointError, ConfigError, PromptSGError
from promptsg.evaluation.domains import SPLIT_NAME
from promptsg.optional import check_vis_backends

__all__ = [
    'build_runner',
    'check_datasets',
    'default_work_dir',
    'resolve_work_dir',
    'summary_line',
    'test_best_checkpoint',
    'write_metrics',
]


#: Hooks every promptsg run needs (safe checkpoints, resumable randomness, per-epoch model
#: state, BN statistics equal on every rank); ``build_runner`` adds any that ``custom_hooks``
#: lacks.
ESSENTIAL_HOOKS = (
    'ReIDTrainingHook',
    'PortableCheckpointHook',
    'RandomStateHook',
    'SyncBuffersHook',
)
#: mmengine's default hooks (a ``None`` there removes the hook; elsewhere it is dropped).
MMENGINE_DEFAULT_HOOKS = (
    'runtime_info',
    'timer',
    'sampler_seed',
    'logger',
    'param_scheduler',
    'checkpoint',
)


def _complete_hooks(cfg: Config) -> None:
    hooks = cfg.get('default_hooks') or {}
    for name in [k for k, v in hooks.items() if v is None and k not in MMENGINE_DEFAULT_HOOKS]:
        hooks.pop(name)
    custom = list(cfg.get('custom_hooks') or [])
    present = {h.get('type') for h in custom if isinstance(h, Mapping)}
    custom += [dict(type=t) for t in ESSENTIAL_HOOKS if t not in present]
    cfg.custom_hooks = custom
    stopper, saver = hooks.get('early_stopping'), hooks.get('checkpoint')
    if stopper and saver and saver.get('save_best') not in (None, stopper.get('monitor')):
        raise ConfigError(
            f"default_hooks.early_stopping.monitor '{stopper.get('monitor')}' and "
            f"default_hooks.checkpoint.save_best '{saver.get('save_best')}' differ: the best "
            'checkpoint must be kept by the metric that early stopping watches'
        )


def _prepare_cpu_distributed(cfg: Config, launcher: str) -> None:
    """Multi-process training without CUDA: gloo, a DDP wrapper without device ids, and (under
    torchrun) the process group joined here, since mmengine's 'pytorch' launcher calls
    ``torch.cuda.set_device`` (the Runner then skips its own initialisation)."""
    if cfg.get('env_cfg', {}).get('dist_cfg'):
        cfg.env_cfg.dist_cfg.backend = 'gloo'
    if launcher == 'none':
        return
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            find_unused_parameters=cfg.get('find_unused_parameters', False),
        )
    cfg.model_wrapper_cfg.setdefault('device_ids', None)
    if launcher == 'pytorch' and not torch.distributed.is_initialized():
        timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout')
        kwargs = {'timeout': datetime.timedelta(seconds=timeout)} if timeout else {}
        torch.distributed.init_process_group(backend='gloo', **kwargs)


def default_work_dir(config_path: str) -> str:
    """``work_dirs/`` + the config's path under its ``configs/`` folder, without ``.py``
    (``configs/vit_b16/v6.py`` -> ``work_dirs/vit_b16/v6``, so the RN50 v6 has its own);
    ``work_dirs/<name>`` for a config outside a ``configs/`` folder."""
    parts = osp.normpath(osp.abspath(config_path)).split(os.sep)
    stem = osp.splitext(parts[-1])[0]
    if 'configs' in parts[:-1]:
        below = parts[len(parts) - 1 - parts[:-1][::-1].index('configs') : -1]
        return osp.join('work_dirs', *below, stem)
    return osp.join('work_dirs', stem)


def resolve_work_dir(cfg: Config, work_dir: str | None = None) -> str:
    """Set and return ``cfg.work_dir``: ``work_dir``, else the config's own, else
    :func:`default_work_dir`."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(cfg.filename)
    return cfg.work_dir


def check_datasets(
    cfg: Config, loaders=('train_dataloader', 'val_dataloader', 'test_dataloader')
) -> dict:
    """Build the data sets of ``loaders`` now, checking their lists and images, so that a fault
    stops the run before its first training iteration (mmengine builds the evaluation sets only
    when it validates or tests); the error names the loader.

    Returns ``{loader: dataset}``; give it to :func:`build_runner` (``datasets=``) so that the
    Runner uses these data sets instead of building (and checking) each one a second time.
    """
    from promptsg.registry import DATASETS

    built = {}
    for loader in loaders:
        node = cfg.get(loader)
        if not isinstance(node, Mapping) or not isinstance(node.get('dataset'), Mapping):
            continue
        try:
            built[loader] = DATASETS.build(node['dataset'])
        except PromptSGError as e:
            raise type(e)(f'{loader}.dataset: {e}') from e
    return built


def _hand_over(runner: Runner, datasets: Mapping) -> None:
    """Put data sets built by :func:`check_datasets` into the Runner's data-loader settings
    (``runner.cfg``, which the work dir's config dump shows, keeps the dataset configs)."""
    for loader, dataset in datasets.items():
        node = getattr(runner, f'_{loader}', None)
        if isinstance(node, Mapping) and isinstance(node.get('dataset'), Mapping):
            setattr(runner, f'_{loader}', {**node, 'dataset': dataset})


def build_runner(
    cfg: Config,
    work_dir: str | None = None,
    launcher: str = 'none',
    resume: str | None = None,
    datasets: Mapping | None = None,
) -> Runner:
    """Build the mmengine Runner: work dir (see :func:`resolve_work_dir`) and launcher.

    Also completes the config (it is what the work dir's config dump shows): the essential
    hooks, ``ReIDOptimWrapperConstructor``/``ReIDOptimWrapper`` as the optimiser defaults,
    ``reid_worker_init_fn`` for training data-loader workers, gloo on machines without CUDA and
    the CUDA defaults of ``complete_gpu_defaults`` (bf16 autocast, TF32, pinned memory, cudnn
    benchmark).
    ``resume``: None, 'auto' (the latest checkpoint in the work dir; none found starts afresh)
    or a checkpoint path. ``datasets``: what :func:`check_datasets` returned, used as built.
    """
    datasets = dict(datasets or {})
    if not isinstance(cfg.get('model'), Mapping):
        raise ConfigError(
            f'config {cfg.filename} has no model: define model = dict(type=...) or inherit a '
            'model file through _base_'
        )
    cfg.launcher = launcher
    check_vis_backends(cfg)  # before anything is written
    resolve_work_dir(cfg, work_dir)
    os.makedirs(cfg.work_dir, exist_ok=True)
    if not torch.cuda.is_available():
        _prepare_cpu_distributed(cfg, launcher)
    _complete_hooks(cfg)
    complete_optim_wrapper(cfg)
    complete_gpu_defaults(cfg)
    fill_num_classes(cfg, datasets.get('train_dataloader'))
    sync_sampler_batch_size(cfg)
    if resume == 'auto':
        latest = latest_checkpoint(cfg.work_dir)
        if latest is None:
            print_log(f'nothing to resume in {cfg.work_dir}: starting afresh', logger='current')
        cfg.resume, cfg.load_from = latest is not None, latest
    elif resume is not None:
        if not osp.isfile(resume):
            raise CheckpointError(f'checkpoint to resume not found: {resume}')
        cfg.resume, cfg.load_from = True, resume
    if 'runner_type' in cfg:
        from promptsg.registry import RUNNERS

        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    _hand_over(runner, datasets)
    return runner


def test_best_checkpoint(runner: Runner) -> dict:
    """Evaluate the best checkpoint kept during training.

    The final weights are tested only when no best checkpoint was kept (no validation ran or
    ``checkpoint.save_best`` is None), and a warning says so. Under DDP the ranks wait for
    rank 0 to have written the file.
    """
    barrier()
    best = runner.message_hub.get_info('best_ckpt')
    if best and osp.isfile(best):
        print_log(f'testing the best checkpoint: {best}', logger='current')
        runner.load_checkpoint(best)
    else:
        print_log(
            'no best checkpoint was kept (no validation ran, or default_hooks.checkpoint.'
            'save_best is None): testing the FINAL weights, not a selected model',
            logger='current',
            level=logging.WARNING,
        )
    return runner.test()


def write_metrics(metrics: dict, path: str) -> None:
    """Write evaluation metrics as JSON (atomically: a temporary file, then a rename)."""
    text = json.dumps({k: float(v) for k, v in metrics.items()}, indent=2, sort_keys=True)
    atomic_write(text.encode(), path)


def summary_line(metrics: dict, prefix: str = 'reid') -> str:
    """``Rank-1 93.20  Rank-5 ...  mAP 85.10`` from a metric dict (std appended when present).

    With several test sets (``<prefix>/<domain>/mAP`` keys, see promptsg.evaluation.domains) the
    flat figures are their mean and each test set follows: ``... | market1501: Rank-1 ...``.
    """
    line = _scores_text(metrics, prefix)
    domains = [
        key[len(prefix) + 1 : -len('/mAP')]
        for key in metrics
        if key.startswith(f'{prefix}/') and key.endswith('/mAP') and key.count('/') == 2
    ]
    domains = [d for d in domains if not SPLIT_NAME.match(d)]
    if domains:
        line += f' (mean of {len(domains)} test sets)'
        line += ''.join(f'  |  {d}: {_scores_text(metrics, f"{prefix}/{d}")}' for d in domains)
    return line


def _scores_text(metrics: dict, prefix: str) -> str:
    parts = []
    for key, label in (
        ('rank1', 'Rank-1'),
        ('rank5', 'Rank-5'),
        ('rank10', 'Rank-10'),
        ('mAP', 'mAP'),
    ):
        value = metrics.get(f'{prefix}/{key}')
        if value is None:
            continue
        std = metrics.get(f'{prefix}/{key}_std')
        parts.append(f'{label} {value:.2f}' + (f' ± {std:.2f}' if std is not None else ''))
    return '  '.join(parts)
