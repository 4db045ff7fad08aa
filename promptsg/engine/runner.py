"""Config loading and Runner building shared by ``tools/train.py`` and ``tools/test.py``."""

from __future__ import annotations

import difflib
import json
import os
import os.path as osp
from collections.abc import Mapping

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

from promptsg.errors import ConfigError

__all__ = [
    'DictAction',
    'apply_cfg_options',
    'build_runner',
    'load_config',
    'summary_line',
    'test_best_checkpoint',
    'write_metrics',
]


def _check_option_key(cfg: Mapping, key: str) -> None:
    """Reject an option whose path does not exist, unless it adds an argument to a component.

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
            return
        else:
            here = '.'.join(walked) or 'the config'
            choices = list(node) if isinstance(node, Mapping) else []
            close = difflib.get_close_matches(part, choices, n=5, cutoff=0.0)
            hint = f'; keys of {here}: {", ".join(close)}' if close else ''
            raise ConfigError(f"--cfg-options key '{key}': '{part}' is not in {here}{hint}")
        walked.append(part)


def apply_cfg_options(cfg: Config, options: dict | None) -> Config:
    """Merge ``--cfg-options`` into ``cfg`` after checking every key exists (see above)."""
    if not options:
        return cfg
    tree = cfg.to_dict()
    for key in options:
        _check_option_key(tree, key)
    cfg.merge_from_dict(options)
    return cfg


def load_config(path: str, options: dict | None = None) -> Config:
    """Read a Python config and apply ``--cfg-options``; a missing file is a ConfigError."""
    if not osp.isfile(path):
        raise ConfigError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    apply_cfg_options(cfg, options)
    sampler = cfg.get('train_dataloader', {}).get('sampler', {})
    if sampler.get('type') == 'PKSampler':
        sampler['batch_size'] = cfg.train_dataloader.batch_size
    return cfg


def build_runner(cfg: Config, work_dir: str | None = None, launcher: str = 'none') -> Runner:
    """Build the mmengine Runner: work dir (default ``work_dirs/<config name>``) and launcher."""
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(cfg.filename))[0])
    os.makedirs(cfg.work_dir, exist_ok=True)
    if not torch.cuda.is_available() and cfg.get('env_cfg', {}).get('dist_cfg'):
        cfg.env_cfg.dist_cfg.backend = 'gloo'
    if 'runner_type' in cfg:
        from promptsg.registry import RUNNERS

        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def test_best_checkpoint(runner: Runner) -> dict:
    """Evaluate the best checkpoint kept during training (the last one if none was kept)."""
    best = runner.message_hub.get_info('best_ckpt')
    if best and osp.isfile(best):
        print_log(f'testing the best checkpoint: {best}', logger='current')
        runner.load_checkpoint(best)
    else:
        print_log(
            'no best checkpoint was kept (no validation): testing the final weights',
            logger='current',
        )
    return runner.test()


def write_metrics(metrics: dict, path: str) -> None:
    """Write evaluation metrics as JSON (atomically: a temporary file, then a rename)."""
    tmp = f'{path}.tmp'
    with open(tmp, 'w') as f:
        json.dump({k: float(v) for k, v in metrics.items()}, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


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
