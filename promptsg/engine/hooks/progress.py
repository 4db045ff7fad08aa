"""A progress bar while test-time features are extracted."""

from __future__ import annotations

import sys

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from tqdm import tqdm

from promptsg.registry import HOOKS


@HOOKS.register_module()
class FeatureProgressHook(Hook):
    """Show a progress bar (batches) on rank 0 while the test loop extracts features.

    Args:
        val: also during validation.
        file: where the bar goes (stderr by default).
        disable: None hides the bar when ``file`` is not a terminal (log files stay clean);
            False always shows it; True never.
    """

    priority = 'LOW'

    def __init__(self, val: bool = False, file=None, disable: bool | None = None) -> None:
        self.val = val
        self.file = file
        self.disable = disable
        self._bar: tqdm | None = None

    def _open(self, runner, loader, what: str) -> None:
        if not is_main_process():
            return
        self._bar = tqdm(
            total=len(loader),
            desc=f'{what} features',
            unit='batch',
            file=self.file or sys.stderr,
            disable=self.disable,
            dynamic_ncols=True,
        )

    def _step(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def before_test_epoch(self, runner) -> None:
        self._open(runner, runner.test_dataloader, 'test')

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._step()

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._close()

    def before_val_epoch(self, runner) -> None:
        if self.val:
            self._open(runner, runner.val_dataloader, 'val')

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._step()

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._close()
