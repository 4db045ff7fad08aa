"""Keep the model in step with the run: class count checked, epoch passed on, lrs logged."""

from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from promptsg.errors import ConfigError
from promptsg.registry import HOOKS


def group_lrs(optim_wrapper) -> dict[str, float]:
    """``{'lr_<group name>': lr}`` of each named parameter group (``lr_group<i>`` unnamed);
    groups that share a ``lr_key`` (e.g. a group and its no-decay twin) are logged once."""
    lrs = {}
    optimizer = getattr(optim_wrapper, 'optimizer', optim_wrapper)
    for i, group in enumerate(optimizer.param_groups):
        key = group.get('lr_key') or f'lr_{group.get("name", f"group{i}")}'
        lrs.setdefault(key, float(group['lr']))
    return lrs


@HOOKS.register_module()
class ReIDTrainingHook(Hook):
    """Before training, check ``model.num_classes`` against the training set's identities;
    before each epoch, call ``model.set_epoch`` (loss-weight ramps depend on it); before each
    iteration, log every parameter group's learning rate as ``lr_<group>`` (mmengine logs
    only the first group's as ``lr``), e.g. ``lr_clip_visual`` and ``lr_modules``."""

    priority = 'NORMAL'

    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_train(self, runner) -> None:
        model = self._model(runner)
        data_classes = runner.train_dataloader.dataset.metainfo.get('num_classes')
        if data_classes is not None and getattr(model, 'num_classes', data_classes) != data_classes:
            raise ConfigError(
                f'model.num_classes is {model.num_classes} but the training set has '
                f'{data_classes} identities: set model.num_classes={data_classes}'
            )

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        for name, lr in group_lrs(runner.optim_wrapper).items():
            runner.message_hub.update_scalar(f'train/{name}', lr)

    def before_train_epoch(self, runner) -> None:
        model = self._model(runner)
        if hasattr(model, 'set_epoch'):
            model.set_epoch(runner.epoch)
