"""Early stopping on a validation metric whose patience counter survives ``--resume``."""

from __future__ import annotations

import math
import numbers

from mmengine.hooks import EarlyStoppingHook

from promptsg.errors import ConfigError
from promptsg.registry import HOOKS

RULES = ('greater', 'less')

#: Message-hub key of the hook's state (saved in checkpoints, restored on resume).
STATE_KEY = 'early_stopping'


@HOOKS.register_module()
class ReIDEarlyStoppingHook(EarlyStoppingHook):
    """Stop training when ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` validations in a row.

    Differences from mmengine's ``EarlyStoppingHook``: a score equal to best + ``min_delta`` is
    no improvement (mmengine counts it as one, so a plateau never stopped); the best score and
    the wait count live in the message hub's runtime info, so every checkpoint carries them and
    ``--resume`` restores them (a run resumed after it stopped early stops again at once); a
    ``monitor`` that the validation does not report is a ``ConfigError`` naming the reported
    keys; ``min_delta`` defaults to 0 and is absolute. The hook runs before ``CheckpointHook``
    (priority LOW) so the epoch's checkpoint already holds the updated counter.

    Args:
        monitor: metric key as the evaluator reports it, e.g. ``'reid/mAP'``, ``'reid/rank1'``.
        patience: validations without improvement before stopping (>= 1).
        min_delta: an improvement must exceed this (absolute, >= 0).
        rule: 'greater' or 'less' is better; inferred from the key when None.
        stopping_threshold: stop at once when the metric reaches this value.
    """

    priority = 'LOW'

    def __init__(
        self,
        monitor: str = 'reid/mAP',
        patience: int = 3,
        min_delta: float = 0.0,
        rule: str | None = None,
        stopping_threshold: float | None = None,
    ) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise ConfigError(
                f"early_stopping.monitor must be a metric key such as 'reid/mAP'; got {monitor!r}"
            )
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 1:
            raise ConfigError(f'early_stopping.patience must be an int >= 1; got {patience!r}')
        if not isinstance(min_delta, numbers.Real) or min_delta < 0:
            raise ConfigError(f'early_stopping.min_delta must be a number >= 0; got {min_delta!r}')
        if rule is not None and rule not in RULES:
            raise ConfigError(f"early_stopping.rule '{rule}' is not one of {list(RULES)}")
        try:
            super().__init__(
                monitor,
                rule=rule,
                min_delta=float(min_delta),
                strict=True,
                check_finite=True,
                patience=patience,
                stopping_threshold=stopping_threshold,
            )
        except ValueError as e:
            raise ConfigError(f'early_stopping: {e} (set rule to one of {list(RULES)})') from e

    def improved(self, score: float) -> bool:
        """True when ``score`` beats the best by more than ``min_delta`` (a tie is no gain)."""
        delta = abs(self.min_delta)
        if self.rule == 'greater':
            return score > self.best_score + delta
        return score < self.best_score - delta

    def _check_stop_condition(self, score: float) -> tuple[bool, str]:
        if self.check_finite and not math.isfinite(score):
            return True, f'{self.monitor} is {score}'
        if self.stopping_threshold is not None and self.rule_map[self.rule](
            score, self.stopping_threshold
        ):
            self.best_score = score
            return (
                True,
                f'{self.monitor} = {score} reached stopping_threshold {self.stopping_threshold}',
            )
        if self.improved(score):
            self.best_score, self.wait_count = score, 0
            return False, ''
        self.wait_count += 1
        if self.wait_count >= self.patience:
            return True, (
                f'{self.monitor} did not improve on {self.best_score} by more than '
                f'{abs(self.min_delta)} in {self.wait_count} validations'
            )
        return False, ''

    def state(self) -> dict:
        """``{'best_score', 'wait_count'}``."""
        return {'best_score': float(self.best_score), 'wait_count': int(self.wait_count)}

    def before_train(self, runner) -> None:
        saved = runner.message_hub.get_info(STATE_KEY)
        if saved is not None:
            self.best_score = float(saved['best_score'])
            self.wait_count = int(saved['wait_count'])
            if self.wait_count >= self.patience:
                runner.logger.info(
                    f'early stopping: {self.monitor} had not improved for {self.wait_count} '
                    f'validations (patience {self.patience}) when this run stopped; not resuming'
                )
                runner.train_loop.stop_training = True

    def after_val_epoch(self, runner, metrics: dict) -> None:
        if self.monitor not in metrics:
            raise ConfigError(
                f"early_stopping.monitor '{self.monitor}' is not a validation metric; "
                f'the evaluator reports {sorted(metrics)}'
            )
        stop, message = self._check_stop_condition(metrics[self.monitor])
        runner.message_hub.update_info(STATE_KEY, self.state())
        best = self.best_score if math.isfinite(self.best_score) else None
        runner.logger.info(
            f'early stopping: {self.monitor} best {best}, '
            f'{self.wait_count}/{self.patience} validations without improvement'
        )
        if stop:
            runner.train_loop.stop_training = True
            runner.logger.info(f'early stopping at epoch {runner.epoch}: {message}')
