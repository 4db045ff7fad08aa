"""Random-number-generator states saved in checkpoints, so that a resumed run repeats itself."""

from __future__ import annotations

import random

import numpy as np
import torch
from mmengine.hooks import Hook

from promptsg.registry import HOOKS

#: Message-hub key of the saved states (runtime info is restored on resume only).
RNG_KEY = 'rng_state'


def get_rng_state() -> dict:
    """The states of Python's, NumPy's and torch's (CPU and CUDA) global generators, as plain
    data that ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        'python': random.getstate(),
        'numpy': [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`get_rng_state` returned."""
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state['torch'].cpu())
    cuda = state.get('cuda')
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the generators' states with every checkpoint and restore them on resume.

    mmengine re-seeds at start-up and restarts the interrupted epoch, but the augmentations,
    dropout and the data loader's seed draw from the global generators, whose states at the end
    of the checkpointed epoch are otherwise lost. The states go into the checkpoint's message-hub
    runtime info, which mmengine restores on ``--resume`` only (not with ``load_from``); they
    are applied just before the first resumed epoch. Single-process runs then reproduce an
    uninterrupted run exactly; under DDP the states are rank 0's.
    """

    priority = 'VERY_HIGH'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        hub = checkpoint.setdefault('message_hub', {})
        hub.setdefault('runtime_info', {})[RNG_KEY] = get_rng_state()
        hub.setdefault('resumed_keys', {})[RNG_KEY] = True

    def before_train_epoch(self, runner) -> None:
        state = runner.message_hub.runtime_info.pop(RNG_KEY, None)
        if state is not None:
            set_rng_state(state)
