"""Epoch checkpoints written after the epoch's validation, atomically, and best kept by metric."""

from __future__ import annotations

import bisect

from mmengine.hooks import CheckpointHook

from promptsg.engine.fileio import ATOMIC_BACKEND
from promptsg.errors import ConfigError
from promptsg.registry import HOOKS


@HOOKS.register_module()
class ReIDCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` with three changes.

    - When a validation follows a training epoch, that epoch's checkpoint is written after the
      validation (after the best-checkpoint bookkeeping and early stopping have updated their
      state), so resuming from it continues exactly where the run was; mmengine writes it
      before the validation and the early-stopping counter of that epoch would be lost.
    - Files are written through the atomic local backend by default (``backend_args``).
    - A ``save_best`` key that the validation does not report is a ``ConfigError`` naming the
      reported keys (mmengine raises a bare ``KeyError``).

    Arguments are ``CheckpointHook``'s (``interval``, ``max_keep_ckpts``, ``save_best``,
    ``rule``, ...).
    """

    def __init__(self, *args, backend_args: dict | None = None, **kwargs) -> None:
        if backend_args is None and kwargs.get('file_client_args') is None:
            backend_args = dict(backend=ATOMIC_BACKEND)
        super().__init__(*args, backend_args=backend_args, **kwargs)
        self._pending = False

    @staticmethod
    def _validates_after(runner) -> bool:
        """Whether the train loop will validate after the epoch that is ending now."""
        loop = runner.train_loop
        if runner.val_loop is None or not hasattr(loop, 'val_begin'):
            return False
        epoch = runner.epoch + 1
        interval = loop.val_interval
        if getattr(loop, 'dynamic_milestones', None):
            step = bisect.bisect(loop.dynamic_milestones, epoch + 1)
            interval = loop.dynamic_intervals[step - 1]
        return epoch >= loop.val_begin and (epoch % interval == 0 or epoch == loop.max_epochs)

    def after_train_epoch(self, runner) -> None:
        if not self.by_epoch:
            return
        due = self.every_n_epochs(runner, self.interval, self.save_begin) or (
            self.save_last and self.is_last_train_epoch(runner)
        )
        if due and self._validates_after(runner):
            self._pending = True
        elif due:
            runner.logger.info(f'Saving checkpoint at {runner.epoch + 1} epochs')
            self._save_checkpoint(runner)

    def after_val_epoch(self, runner, metrics: dict) -> None:
        missing = [k for k in self.save_best or [] if k != 'auto' and k not in metrics]
        if metrics and missing:
            raise ConfigError(
                f'checkpoint.save_best {missing} is not a validation metric; the evaluator '
                f'reports {sorted(metrics)}'
            )
        pending, self._pending = self._pending, False
        if not pending:
            super().after_val_epoch(runner, metrics)
            return
        # The epoch is over (runner.epoch already counts it): save it once, after the best.
        last, self.last_ckpt = self.last_ckpt, None  # no re-save of the previous epoch file
        super().after_val_epoch(runner, metrics)
        self.last_ckpt = last
        runner.logger.info(f'Saving checkpoint at {runner.epoch} epochs')
        self._save_checkpoint_with_step(
            runner, runner.epoch, dict(epoch=runner.epoch, iter=runner.iter)
        )
