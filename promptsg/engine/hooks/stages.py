"""Training stages in one run: the model and the optimiser switch stage at configured epochs."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from mmengine.dataset import default_collate
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from promptsg.engine.hooks.random_state import get_rng_state, set_rng_state
from promptsg.engine.optimizers.stages import StageOptimWrapperDict
from promptsg.errors import ConfigError
from promptsg.registry import DATASETS, HOOKS


def _check_stages(stages) -> list[dict]:
    if not isinstance(stages, list | tuple) or not stages:
        raise ConfigError(
            'TrainingStagesHook.stages must be a non-empty list such as '
            "[dict(name='prompt', epochs=120), dict(name='image', epochs=60)]"
        )
    checked = []
    for i, stage in enumerate(stages):
        if not isinstance(stage, Mapping) or set(stage) - {'name', 'epochs', 'cache_features'}:
            raise ConfigError(
                f'TrainingStagesHook.stages[{i}] must be a dict with name, epochs and optionally '
                f'cache_features; got {stage!r}'
            )
        epochs = stage.get('epochs')
        if not isinstance(stage.get('name'), str) or not isinstance(epochs, int) or epochs < 1:
            raise ConfigError(
                f'TrainingStagesHook.stages[{i}] needs a name (str) and epochs (int >= 1); '
                f'got {dict(stage)!r}'
            )
        checked.append({'cache_features': False, **stage})
    names = [s['name'] for s in checked]
    if len(set(names)) != len(names):
        raise ConfigError(f'TrainingStagesHook: stage names repeat: {names}')
    return checked


@HOOKS.register_module()
class TrainingStagesHook(Hook):
    """Run ``stages`` one after another in one epoch-based training run.

    Before each training epoch the stage that the epoch falls in is made active: the
    optimiser (a ``StageOptimWrapperDict``, built by ``StageOptimWrapperConstructor``, one key
    per stage) routes updates to that stage's wrapper, and the model's ``set_stage(name,
    feature_loader)`` prepares it (CLIP-ReID: the stage-2 text-feature cache). Schedulers are
    keyed by stage (``param_scheduler = dict(prompt=[...], image=[...])``) with ``begin`` /
    ``end`` in the run's epochs. A resumed run enters the stage of its first epoch, so it
    continues in that stage; the stage is a function of the epoch, never saved state.

    ``cache_features=True`` on a stage passes the model a loader over the training set with
    the test pipeline (deterministic, in order) to cache frozen features from; the global
    random generators are left as they were, so the run does not depend on it.

    Args:
        stages: ``[dict(name, epochs, cache_features=False), ...]``; the epochs must add up to
            ``train_cfg.max_epochs``.
    """

    priority = 'ABOVE_NORMAL'  # after RandomStateHook (VERY_HIGH) restores the generators

    def __init__(self, stages: list[dict]) -> None:
        self.stages = _check_stages(stages)
        self.current: str | None = None

    def stage_at(self, epoch: int) -> dict:
        """The stage of (0-based) ``epoch``."""
        end = 0
        for stage in self.stages:
            end += stage['epochs']
            if epoch < end:
                return stage
        return self.stages[-1]

    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_train(self, runner) -> None:
        total = sum(s['epochs'] for s in self.stages)
        max_epochs = getattr(runner.train_loop, 'max_epochs', None)
        if max_epochs != total:
            raise ConfigError(
                f'the stages add up to {total} epochs but train_cfg.max_epochs is {max_epochs}; '
                'the two must agree (and training must be epoch-based)'
            )
        wrapper, names = runner.optim_wrapper, [s['name'] for s in self.stages]
        if not isinstance(wrapper, StageOptimWrapperDict) or list(wrapper.keys()) != names:
            raise ConfigError(
                "TrainingStagesHook needs optim_wrapper.constructor='StageOptimWrapperConstructor' "
                f'with one entry per stage, in order: {names}'
            )
        if not hasattr(self._model(runner), 'set_stage'):
            raise ConfigError(
                f'model {type(self._model(runner)).__name__} has no stages (no set_stage method)'
            )
        self.current = None

    def before_train_epoch(self, runner) -> None:
        stage = self.stage_at(runner.epoch)
        if stage['name'] == self.current:
            return
        print_log(f"epoch {runner.epoch + 1}: stage '{stage['name']}' begins", logger='current')
        runner.optim_wrapper.activate(stage['name'])
        loader = self._feature_loader(runner) if stage['cache_features'] else None
        state = get_rng_state()
        try:
            self._model(runner).set_stage(stage['name'], feature_loader=loader)
        finally:
            set_rng_state(state)
        self.current = stage['name']

    @staticmethod
    def _feature_loader(runner):
        """The training set with the test (else val) pipeline, in order, one process's worth
        of everything (every rank caches every sample)."""
        cfg = runner.cfg
        pipeline = None
        for key in ('test_dataloader', 'val_dataloader'):
            loader_cfg = cfg.get(key)
            if loader_cfg and loader_cfg.get('dataset', {}).get('pipeline') is not None:
                pipeline = loader_cfg['dataset']['pipeline']
                break
        if pipeline is None:
            raise ConfigError(
                'cache_features needs a test_dataloader or val_dataloader pipeline to read the '
                'training images with'
            )
        train = cfg.train_dataloader
        dataset = DATASETS.build(dict(train['dataset'], pipeline=pipeline))
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=train.get('batch_size', 64),
            shuffle=False,
            num_workers=0,
            collate_fn=default_collate,
        )
