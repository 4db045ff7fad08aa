"""Config loading and Runner building shared by ``tools/train.py`` and ``tools/test.py``."""

from __future__ import annotations

import datetime
import difflib
import json
import logging
import os
import os.path as osp
from collections.abc import Mapping

import torch
from mmengine.config import Config, DictAction
from mmengine.dist import barrier
from mmengine.logging import print_log
from mmengine.runner import Runner

from promptsg.engine.checkpoint import latest_checkpoint
from promptsg.engine.fileio import atomic_write
from promptsg.errors import CheckpointError, ConfigError

__all__ = [
    'DictAction',
    'apply_cfg_options',
    'build_runner',
    'fill_num_classes',
    'load_config',
    'path_options',
    'read_config',
    'summary_line',
    'sync_sampler_batch_size',
    'test_best_checkpoint',
    'write_metrics',
]


def _check_option_key(cfg: Mapping, key: str):
    """Reject an option whose path does not exist, unless it adds an argument to a component;
    return the value the option replaces (None for a new argument).

    ``model.backbone.pretrained=...`` may add a constructor argument (its parent has ``type``);
    ``train_dataloder.batch_size=...`` (a typo) names nothing and is an error.
    """
    node, walked = cfg, []
    parts = key.split('.')
    for i, part in enumerate(parts):
        if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, Mapping) and i == len(parts) - 1 and 'type' in node:
            return None
        else:
            here = '.'.join(walked) or 'the config'
            choices = list(node) if isinstance(node, Mapping) else []
            close = difflib.get_close_matches(part, choices, n=5, cutoff=0.0)
            hint = f'; keys of {here}: {", ".join(close)}' if close else ''
            raise ConfigError(f"--cfg-options key '{key}': '{part}' is not in {here}{hint}")
        walked.append(part)
    return node


#: Words mmengine takes in some numeric slots (``log_processor.window_size='global'``, ...).
WORDS_FOR_NUMBERS = ('global', 'auto')


def _check_option_type(key: str, value, old) -> None:
    """Reject text where the config holds a number or a flag (``max_epochs=abc``).

    ``DictAction`` already turns ``30``, ``1e-4``, ``True`` and ``None`` into Python values, so
    text left over where the config has a number is a typo, caught here before any work.
    """
    if not isinstance(value, str) or old is None or not isinstance(old, (bool, int, float)):
        return
    if value in WORDS_FOR_NUMBERS:
        return
    kind = 'True or False' if isinstance(old, bool) else 'a number'
    raise ConfigError(
        f"--cfg-options {key}={value!r}: expected {kind}, like the config's value {old!r}"
    )


def apply_cfg_options(cfg: Config, options: dict | None) -> Config:
    """Merge ``--cfg-options`` into ``cfg`` after checking every key exists and that text does
    not replace a number or a flag (see above)."""
    if not options:
        return cfg
    tree = cfg.to_dict()
    for key, value in options.items():
        _check_option_type(key, value, _check_option_key(tree, key))
    cfg.merge_from_dict(options)
    return cfg


def read_config(path: str) -> Config:
    """``Config.fromfile`` with a missing file, a syntax error or a failing import (of a base
    file or a ``custom_imports`` module) as a one-line ConfigError."""
    if not osp.isfile(path):
        raise ConfigError(f'config file not found: {path}')
    try:
        return Config.fromfile(path)
    except SyntaxError as err:
        where = err.filename if err.filename and osp.isfile(err.filename) else path
        raise ConfigError(f'config {where}, line {err.lineno}: {err.msg}') from err
    except Exception as err:  # a bad _base_ path, a NameError, an import that fails
        root = err
        while root.__cause__ or root.__context__:  # mmengine wraps a failing custom import
            root = root.__cause__ or root.__context__
        first = (str(root).strip().splitlines() or [''])[0]
        raise ConfigError(f'cannot read config {path}: {type(root).__name__}: {first}') from err


#: The data loaders whose data sets ``--data-root`` points at.
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def path_options(data_root: str | None = None, pretrained: str | None = None) -> dict:
    """``--cfg-options`` that point every data set at ``data_root`` and the backbone at weights."""
    options: dict = {}
    if data_root is not None:
        options.update({f'{loader}.dataset.data_root': str(data_root) for loader in LOADERS})
    if pretrained is not None:
        options['model.backbone.pretrained'] = str(pretrained)
    return options


def load_config(
    path: str,
    options: dict | None = None,
    data_root: str | None = None,
    pretrained: str | None = None,
) -> Config:
    """Read a Python config, fill the optimiser defaults (see :func:`build_runner`), point the
    data sets at ``data_root`` and the backbone at ``pretrained`` (when given), then apply
    ``--cfg-options``; an unreadable file is a ConfigError (see :func:`read_config`)."""
    cfg = read_config(path)
    _complete_optim_wrapper(cfg)  # so that options may add e.g. optim_wrapper.dtype
    present = {k: v for k, v in path_options(data_root, pretrained).items() if _has_loader(cfg, k)}
    apply_cfg_options(cfg, present)
    apply_cfg_options(cfg, options)
    sync_sampler_batch_size(cfg)
    return cfg


def sync_sampler_batch_size(cfg: Config) -> None:
    """Give the P×K sampler the training loader's batch size (it cuts batches of that size)."""
    loader = cfg.get('train_dataloader') or {}
    sampler = loader.get('sampler') or {}
    if sampler.get('type') == 'PKSampler':
        sampler['batch_size'] = loader['batch_size']


def _has_loader(cfg: Config, key: str) -> bool:
    """Whether the config has the data loader (or model) that a path option ``key`` targets."""
    return bool(cfg.get(key.split('.')[0]))


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


def _complete_optim_wrapper(cfg: Config) -> None:
    optim_wrapper = cfg.get('optim_wrapper')
    if isinstance(optim_wrapper, Mapping) and 'optimizer' in optim_wrapper:
        optim_wrapper.setdefault('constructor', 'ReIDOptimWrapperConstructor')
        if optim_wrapper['constructor'] == 'ReIDOptimWrapperConstructor':
            optim_wrapper.setdefault('type', 'ReIDOptimWrapper')
    loader = cfg.get('train_dataloader')
    if isinstance(loader, Mapping):
        loader.setdefault('worker_init_fn', dict(type='promptsg.reid_worker_init_fn'))


def fill_num_classes(cfg: Config) -> int | None:
    """Set ``model.num_classes`` from the training set when the config leaves it ``None``.

    The training set is built once to count its identities (its images are not read).
    Returns the value set, or None when nothing was filled in.
    """
    model, loader = cfg.get('model'), cfg.get('train_dataloader')
    if not isinstance(model, Mapping) or model.get('num_classes', 0) is not None or not loader:
        return None
    from promptsg.registry import DATASETS

    dataset = DATASETS.build(dict(loader['dataset'], pipeline=[]))
    cfg.model.num_classes = dataset.metainfo['num_classes']
    print_log(
        f'model.num_classes = {cfg.model.num_classes} (identities of the training set)',
        logger='current',
    )
    return cfg.model.num_classes


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


def build_runner(
    cfg: Config, work_dir: str | None = None, launcher: str = 'none', resume: str | None = None
) -> Runner:
    """Build the mmengine Runner: work dir (default ``work_dirs/<config name>``) and launcher.

    Also completes the config (it is what the work dir's config dump shows): the essential
    hooks, ``ReIDOptimWrapperConstructor``/``ReIDOptimWrapper`` as the optimiser defaults,
    ``reid_worker_init_fn`` for training data-loader workers, and gloo on machines without CUDA.
    ``resume``: None, 'auto' (the latest checkpoint in the work dir; none found starts afresh)
    or a checkpoint path.
    """
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(cfg.filename))[0])
    os.makedirs(cfg.work_dir, exist_ok=True)
    if not torch.cuda.is_available():
        _prepare_cpu_distributed(cfg, launcher)
    _complete_hooks(cfg)
    _complete_optim_wrapper(cfg)
    fill_num_classes(cfg)
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

        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


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
    """``Rank-1 93.20  Rank-5 ...  mAP 85.10`` from a metric dict (std appended when present)."""
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
