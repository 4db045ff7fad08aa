"""Epoch checkpoints written after the epoch's validation, atomically, and best kept by metric.

Rotation never leaves a work dir without a resumable checkpoint: the new file is written
(atomically), then ``last_checkpoint`` (and ``best_checkpoint``) point at it, and only then
is the file it replaces deleted. mmengine deletes first, so a kill during the write lost both.
"""

from __future__ import annotations

import bisect
import os
import os.path as osp
import shutil

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from promptsg.engine.fileio import ATOMIC_BACKEND, atomic_write, remove_stale_temporaries
from promptsg.errors import CheckpointError, ConfigError
from promptsg.registry import HOOKS

#: Text file in the work dir naming the best checkpoint (beside mmengine's ``last_checkpoint``).
BEST_POINTER = 'best_checkpoint'


def _free_space(folder: str) -> str:
    try:
        return f'{shutil.disk_usage(folder).free / 2**20:.0f} MiB free'
    except OSError:
        return 'free space unknown'


@HOOKS.register_module()
class ReIDCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` with these changes.

    - When a validation follows a training epoch, that epoch's checkpoint is written after the
      validation (after the best-checkpoint bookkeeping and early stopping have updated their
      state), so resuming from it continues exactly where the run was; mmengine writes it
      before the validation and the early-stopping counter of that epoch would be lost.
    - Files are written through the atomic local backend by default (``backend_args``), and
      a replaced epoch or best checkpoint is deleted only after its successor and the
      pointers to it (``last_checkpoint``, ``best_checkpoint``) are on disk. Temporaries of a
      killed save, and best files newer than the resumed checkpoint, are removed at start.
    - A failed write (disk full, read-only) is a ``CheckpointError`` naming the file and the
      free space; the previous checkpoint is kept.
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
        self._replaced: list[str] = []  # files to delete once their successors are saved

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if not is_main_process():
            return
        for path in remove_stale_temporaries(self.out_dir):
            runner.logger.info(f'removed the temporary file of an interrupted save: {path}')
        if runner._resume:
            self._drop_orphan_bests(runner)

    def _drop_orphan_bests(self, runner) -> None:
        """After a resume, delete best checkpoints the resumed state does not know (written by
        a run killed before its epoch checkpoint) and point ``best_checkpoint`` at its best."""
        known = {self.best_ckpt_path} if getattr(self, 'best_ckpt_path', None) else set()
        known |= {p for p in getattr(self, 'best_ckpt_path_dict', {}).values() if p}
        if not self.save_best or not osp.isdir(self.out_dir):
            return
        for name in sorted(os.listdir(self.out_dir)):
            path = osp.join(self.out_dir, name)
            if name.startswith('best_') and name.endswith('.pth') and path not in known:
                os.remove(path)
                runner.logger.info(f'removed {path}: written after the resumed checkpoint')
        self._commit(runner)

    def _save(self, runner, filename: str, **kwargs) -> None:
        """``runner.save_checkpoint`` into ``out_dir``; a failed write is a CheckpointError."""
        path = osp.join(self.out_dir, filename)
        try:
            runner.save_checkpoint(
                self.out_dir,
                filename,
                self.file_client_args,
                backend_args=self.backend_args,
                **kwargs,
            )
        except OSError as e:
            kept = sorted(
                f for f in os.listdir(self.out_dir) if f.endswith('.pth') and f != filename
            )
            keep = f'; the previous checkpoints are kept: {", ".join(kept)}' if kept else ''
            raise CheckpointError(
                f'cannot write checkpoint {path}: {e.strerror or e} '
                f'({_free_space(self.out_dir)}){keep}'
            ) from e

    def _write_pointer(self, runner, name: str, target: str) -> None:
        """Atomically write the text file ``name`` of the work dir naming ``target``."""
        path = osp.join(runner.work_dir, name)
        try:
            atomic_write(target.encode(), path)
        except OSError as e:
            raise CheckpointError(
                f'cannot write {path}: {e.strerror or e} ({_free_space(runner.work_dir)}); '
                f'{target} is saved, the previous checkpoints are kept'
            ) from e

    def _commit(self, runner) -> None:
        """Point ``best_checkpoint`` at the best file, then delete the replaced files."""
        replaced, self._replaced = self._replaced, []
        if not is_main_process():
            return
        best = getattr(self, 'best_ckpt_path', None)
        if self.save_best and len(self.key_indicators) == 1 and best:
            self._write_pointer(runner, BEST_POINTER, best)
        for path in replaced:
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # checkpoints saved by deepspeed are folders
                self.file_backend.rmtree(path)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        """Write the checkpoint of ``step``, point ``last_checkpoint`` at it, then delete the
        checkpoint it replaces (mmengine deletes first)."""
        previous = self.last_ckpt
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                old = self.keep_ckpt_ids.popleft()
                self._replaced.append(
                    self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old))
                )
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        try:
            self._save(
                runner,
                filename,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                **self.args,
            )
        except CheckpointError:
            self.last_ckpt, self._replaced = previous, []
            raise
        if is_main_process():
            self._write_pointer(runner, 'last_checkpoint', self.last_ckpt)
        self._commit(runner)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """mmengine's best-checkpoint bookkeeping, writing the new best before the old one is
        deleted (after the epoch checkpoint that records the new best, when one follows)."""
        if not self.save_best:
            return
        step = runner.epoch if self.by_epoch else runner.iter
        cur_type = 'epoch' if self.by_epoch else 'iter'
        ckpt_filename = self.filename_tmpl.format(step)
        meta = dict(epoch=runner.epoch, iter=runner.iter)
        if 'auto' in self.key_indicators:
            self._init_rule(self.rules, [list(metrics.keys())[0]])
        single = len(self.key_indicators) == 1
        updated = False
        for key_indicator, rule in zip(self.key_indicators, self.rules):
            score = metrics[key_indicator]
            score_key = 'best_score' if single else f'best_score_{key_indicator}'
            ckpt_key = 'best_ckpt' if single else f'best_ckpt_{key_indicator}'
            old_path = self.best_ckpt_path if single else self.best_ckpt_path_dict[key_indicator]
            best = runner.message_hub.runtime_info.get(score_key, self.init_value_map[rule])
            if score is None or not self.is_better_than[key_indicator](score, best):
                continue
            updated = True
            runner.message_hub.update_info(score_key, score)
            name = f'best_{key_indicator}_{ckpt_filename}'.replace('/', '_')
            path = self.file_backend.join_path(self.out_dir, name)
            if single:
                self.best_ckpt_path = path
            else:
                self.best_ckpt_path_dict[key_indicator] = path
            runner.message_hub.update_info(ckpt_key, path)
            self._save(
                runner,
                name,
                save_optimizer=False,
                save_param_scheduler=False,
                meta=meta,
                by_epoch=False,
            )
            if old_path and old_path != path:
                self._replaced.append(old_path)
            runner.logger.info(
                f'The best checkpoint with {score:0.4f} {key_indicator} at {step} {cur_type} '
                f'is saved to {name}.'
            )
        if updated and self.last_ckpt is not None:
            # re-save the epoch checkpoint so that it records the new best (mmengine does too)
            self._save_checkpoint_with_step(runner, step, meta)
        elif not self._pending:
            self._commit(runner)

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
        if not self._pending:
            super().after_val_epoch(runner, metrics)
            return
        # The epoch is over (runner.epoch already counts it): save it once, after the best.
        last, self.last_ckpt = self.last_ckpt, None  # no re-save of the previous epoch file
        super().after_val_epoch(runner, metrics)
        self.last_ckpt, self._pending = last, False
        runner.logger.info(f'Saving checkpoint at {runner.epoch} epochs')
        self._save_checkpoint_with_step(
            runner, runner.epoch, dict(epoch=runner.epoch, iter=runner.iter)
        )
