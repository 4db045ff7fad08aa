"""Checkpoints that load with ``weights_only=True`` and say what made them."""

from __future__ import annotations

import platform

import mmengine
import numpy as np
import open_clip
import torch
import torchvision
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer

import promptsg
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
    """Store message-hub history as plain arrays and add package versions to ``meta``.

    mmengine pickles its ``HistoryBuffer`` objects with references to their methods, which torch's
    safe (``weights_only``) loader rightly refuses; we store ``{log_history, count_history,
    max_length}`` instead and rebuild the buffers when a checkpoint is loaded for resuming.
    """

    priority = 'VERY_LOW'

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
        scalars = checkpoint.get('message_hub', {}).get('log_scalars', {})
        for key, value in list(scalars.items()):
            if isinstance(value, dict) and value.get(_BUFFER_TAG):
                scalars[key] = HistoryBuffer(
                    value['log_history'], value['count_history'], value['max_length']
                )
