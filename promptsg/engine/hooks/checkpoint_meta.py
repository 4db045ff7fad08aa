"""Checkpoints that load with ``weights_only=True``, say what made them and fit the model."""

from __future__ import annotations

import logging
import platform

import mmengine
import numpy as np
import open_clip
import torch
import torchvision
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer, print_log
from mmengine.model import is_model_wrapper

import promptsg
from promptsg.engine.checkpoint import check_checkpoint_fits
from promptsg.registry import HOOKS

_BUFFER_TAG = '__history_buffer__'


def package_versions() -> dict[str, str]:
    """Versions of the packages a checkpoint depends on."""
    return {
        'promptsg': promptsg.__version__,
        'torch': str(torch.__version__),
        'torchvision': torchvision.__version__,
        'mmengine': mmengine.__version__,
        'open_clip': open_clip.__version__,
        'numpy': np.__version__,
        'python': platform.python_version(),
    }


@HOOKS.register_module()
class PortableCheckpointHook(Hook):
    """Store message-hub history as plain arrays, add package versions to ``meta``, and refuse
    a checkpoint whose weights do not fit the model.

    mmengine pickles its ``HistoryBuffer`` objects with references to their methods, which torch's
    safe (``weights_only``) loader rightly refuses; we store ``{log_history, count_history,
    max_length}`` instead and rebuild the buffers when a checkpoint is loaded for resuming.
    mmengine loads weights non-strictly (a mismatch is only logged); here missing, unexpected or
    shape-mismatched keys raise a ``CheckpointError`` naming them and the differing ``model.*``
    config keys (a warning lists config differences when the weights do fit).

    Args:
        check_model: check that the weights fit before ``load_from``, ``--resume`` or testing.
    """

    priority = 'VERY_LOW'

    def __init__(self, check_model: bool = True) -> None:
        self.check_model = check_model

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        scalars = checkpoint.get('message_hub', {}).get('log_scalars', {})
        for key, buf in list(scalars.items()):
            if isinstance(buf, HistoryBuffer):
                log, count = buf.data
                scalars[key] = {
                    _BUFFER_TAG: True,
                    'log_history': np.asarray(log),
                    'count_history': np.asarray(count),
                    'max_length': int(buf.max_length),
                }
        checkpoint.setdefault('meta', {})['versions'] = package_versions()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.check_model:
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            diff = check_checkpoint_fits(model, checkpoint, runner.cfg.get('model'))
            if diff:
                print_log(
                    f'the checkpoint was trained with a different model config: {"; ".join(diff)}',
                    logger='current',
                    level=logging.WARNING,
                )
        scalars = checkpoint.get('message_hub', {}).get('log_scalars', {})
        for key, value in list(scalars.items()):
            if isinstance(value, dict) and value.get(_BUFFER_TAG):
                scalars[key] = HistoryBuffer(
                    value['log_history'], value['count_history'], value['max_length']
                )


#: Option key prefixes whose values a resumed checkpoint's state replaces, and that state.
RESUMED_STATE = (
    (('optim_wrapper.optimizer.', 'optim_wrapper.paramwise_cfg.'), 'optimizer state'),
    (('param_scheduler',), 'param scheduler state'),
    (('randomness.',), 'random generator states'),
)


def _optimizer_values(checkpoint: dict, key: str) -> str:
    """The resumed param groups' values of the option ``key`` (``lr_modules`` -> ``lr``)."""
    name = key.rsplit('.', 1)[-1]
    name = 'lr' if name.startswith('lr') else name
    groups = checkpoint.get('optimizer', {}).get('param_groups', [])
    values = [
        f'{g.get("name", i)} {g[name]:g}'
        if isinstance(g[name], float)
        else f'{g.get("name", i)} {g[name]!r}'
        for i, g in enumerate(groups)
        if name in g
    ]
    return f' ({name}: {", ".join(values)})' if values else ''


def resume_overrides(options: dict, checkpoint: dict) -> list[str]:
    """The ``--cfg-options`` that resuming from ``checkpoint`` overrides, one text each."""
    found = []
    for key, value in options.items():
        for prefixes, state in RESUMED_STATE:
            if key.startswith(prefixes):
                extra = _optimizer_values(checkpoint, key) if state == 'optimizer state' else ''
                found.append(f'{key}={value!r} by the resumed {state}{extra}')
                break
    return found


@HOOKS.register_module()
class ResumedOptionsHook(Hook):
    """On ``--resume``, warn which ``--cfg-options`` the resumed state overrides (the optimiser's
    learning rates, the scheduler, the random generators), instead of ignoring them silently.

    Args:
        options: the ``--cfg-options`` given with ``--resume``.
    """

    priority = 'VERY_LOW'

    def __init__(self, options: dict) -> None:
        self.options = dict(options)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not runner._resume:
            return
        overridden = resume_overrides(self.options, checkpoint)
        if overridden:
            print_log(
                '--resume: the checkpoint overrides --cfg-options '
                + '; '.join(overridden)
                + ' (start a new run, with load_from for the weights, to apply them)',
                logger='current',
                level=logging.WARNING,
            )
