"""Random-number-generator states saved in checkpoints, so that a resumed run repeats itself."""

from __future__ import annotations

import random

import numpy as np
import torch
from mmengine.dist import all_gather_object
from mmengine.hooks import Hook

from promptsg.registry import HOOKS

#: Message-hub key of the saved states (runtime info is restored on resume only).
RNG_KEY = 'rng_state'
#: Message-hub key of every rank's states (a list indexed by rank), saved at epoch ends under DDP.
RANK_RNG_KEY = 'rng_state_per_rank'


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
    are applied just before the first resumed epoch, so a resumed run reproduces an
    uninterrupted one exactly.

    Validation during training leaves the generators as it found them (the states are put back
    after each validation epoch; its data loader draws a seed from them). So the training run
    does not depend on how often it is validated, and the states saved at the end of an epoch
    are the ones the next epoch starts from.

    Under DDP the ranks gather their states to rank 0 (the checkpoint writer) at the end of each
    training epoch, so each rank gets its own back on resume; that matters when ranks are
    seeded apart (``randomness.diff_rank_seed=True``). A checkpoint written in the middle of an
    epoch (``by_epoch=False``), or resumed with another number of processes, carries or fits
    rank 0's states only, which every rank then restores.
    """

    priority = 'VERY_HIGH'  # before CheckpointHook (VERY_LOW) at the end of an epoch

    def __init__(self) -> None:
        self._rank_states: list[dict] | None = None
        self._before_val: dict | None = None

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._rank_states = None  # a save from here on is mid-epoch: gathered states are stale

    def after_train_epoch(self, runner) -> None:
        if runner.world_size > 1:
            self._rank_states = all_gather_object(get_rng_state())

    def before_val_epoch(self, runner) -> None:
        self._before_val = get_rng_state()

    def after_val_epoch(self, runner, metrics=None) -> None:
        if self._before_val is not None:
            set_rng_state(self._before_val)
            self._before_val = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        hub = checkpoint.setdefault('message_hub', {})
        runtime, resumed = hub.setdefault('runtime_info', {}), hub.setdefault('resumed_keys', {})
        runtime[RNG_KEY], resumed[RNG_KEY] = get_rng_state(), True
        if self._rank_states is not None:
            runtime[RANK_RNG_KEY], resumed[RANK_RNG_KEY] = self._rank_states, True

    def before_train_epoch(self, runner) -> None:
        info = runner.message_hub.runtime_info
        state, per_rank = info.pop(RNG_KEY, None), info.pop(RANK_RNG_KEY, None)
        if per_rank is not None and len(per_rank) == runner.world_size:
            state = per_rank[runner.rank]
        if state is not None:
            set_rng_state(state)
