"""Keep the model in step with the run: class count checked, current epoch passed on."""

from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from promptsg.errors import ConfigError
from promptsg.registry import HOOKS


@HOOKS.register_module()
class ReIDTrainingHook(Hook):
    """Before training, check ``model.num_classes`` against the training set's identities;
    before each epoch, call ``model.set_epoch`` (loss-weight ramps depend on it)."""

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

    def before_train_epoch(self, runner) -> None:
        model = self._model(runner)
        if hasattr(model, 'set_epoch'):
            model.set_epoch(runner.epoch)
