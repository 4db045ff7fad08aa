"""One optimiser per training stage (CLIP-ReID: prompts first, then the image encoder).

mmengine's Runner holds one optimiser wrapper; ``StageOptimWrapperDict`` is an
``OptimWrapperDict`` (so every stage's state is checkpointed and its schedulers are keyed by
stage) that routes ``train_step``'s calls to the wrapper of the active stage.
``TrainingStagesHook`` sets the active stage at the configured epochs.
"""

from __future__ import annotations

from contextlib import contextmanager

from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import Tensor, nn

from promptsg.engine.optimizers.constructor import ReIDOptimWrapperConstructor
from promptsg.errors import ConfigError
from promptsg.registry import OPTIM_WRAPPER_CONSTRUCTORS


class StageOptimWrapperDict(OptimWrapperDict):
    """The optimiser wrappers of the stages, by stage name; updates go to ``active``'s.

    ``optimizer`` is the active stage's, so code that reads one optimiser (lr logging) sees
    the stage that trains. ``state_dict``/``load_state_dict`` cover every stage.
    """

    def __init__(self, **wrappers: OptimWrapper) -> None:
        super().__init__(**wrappers)
        self.active = next(iter(wrappers))

    def activate(self, stage: str) -> None:
        if stage not in self.optim_wrappers:
            raise ConfigError(
                f"no optimiser for stage '{stage}': optim_wrapper has {list(self.optim_wrappers)}"
            )
        self.active = stage

    @property
    def current(self) -> OptimWrapper:
        return self.optim_wrappers[self.active]

    @property
    def optimizer(self):
        return self.current.optimizer

    @contextmanager
    def optim_context(self, model: nn.Module):
        with self.current.optim_context(model):
            yield

    def update_params(self, loss: Tensor, step_kwargs=None, zero_kwargs=None) -> None:
        self.current.update_params(loss, step_kwargs=step_kwargs, zero_kwargs=zero_kwargs)

    def backward(self, loss: Tensor, **kwargs) -> None:
        self.current.backward(loss, **kwargs)

    def step(self, **kwargs) -> None:
        self.current.step(**kwargs)

    def zero_grad(self, **kwargs) -> None:
        self.current.zero_grad(**kwargs)


class _SelectedParams(ReIDOptimWrapperConstructor):
    """``ReIDOptimWrapperConstructor`` over the parameters whose names start with one of
    ``params`` (all when empty) and with none of ``exclude``."""

    def __init__(self, cfg: dict, paramwise_cfg, params, exclude) -> None:
        super().__init__(cfg, paramwise_cfg)
        self.include, self.exclude = tuple(params), tuple(exclude)

    def _selected(self, name: str) -> bool:
        chosen = not self.include or name.startswith(self.include)
        return chosen and not name.startswith(self.exclude)

    def param_groups(self, model: nn.Module) -> list[dict]:
        groups = []
        for group in super().param_groups(model):
            keep = [i for i, n in enumerate(group['param_names']) if self._selected(n)]
            if keep:
                group['params'] = [group['params'][i] for i in keep]
                group['param_names'] = [group['param_names'][i] for i in keep]
                groups.append(group)
        return groups


def _prefixes(stage: str, key: str, value) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            f'optim_wrapper.{stage}.{key} must be a list of parameter-name prefixes; got {value!r}'
        )
    return tuple(value)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class StageOptimWrapperConstructor:
    """Build a ``StageOptimWrapperDict``: one ``ReIDOptimWrapper`` per stage, in config order.

    Each key of ``optim_wrapper`` (besides ``constructor``) is a stage name whose value is an
    ordinary promptsg ``optim_wrapper`` (``optimizer``, ``paramwise_cfg``, ``clip_grad``, ...)
    plus ``params`` (name prefixes of the parameters it trains, default all) and ``exclude``
    (prefixes it never trains). Other top-level keys (e.g. ``dtype`` from ``--amp``,
    ``clip_grad``) apply to every stage that does not set them::

        optim_wrapper = dict(
            constructor='StageOptimWrapperConstructor',
            prompt=dict(optimizer=dict(type='Adam', lr=3.5e-4), params=['prompt_learner.']),
            image=dict(optimizer=dict(type='Adam', lr=5e-6), exclude=['prompt_learner.']),
        )
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None) -> None:
        if paramwise_cfg:
            raise ConfigError(
                'optim_wrapper.paramwise_cfg belongs inside a stage: optim_wrapper.<stage>.'
                'paramwise_cfg'
            )
        cfg = {k: v for k, v in dict(optim_wrapper_cfg).items() if k != 'type'}
        stages = {k: v for k, v in cfg.items() if isinstance(v, dict) and 'optimizer' in v}
        shared = {k: v for k, v in cfg.items() if k not in stages}
        if not stages:
            raise ConfigError(
                'optim_wrapper with StageOptimWrapperConstructor needs one dict with an '
                'optimizer per stage, e.g. prompt=dict(optimizer=...), image=dict(optimizer=...); '
                f'got keys {sorted(cfg)}'
            )
        self.constructors = {}
        for name, stage_cfg in stages.items():
            stage_cfg = {**shared, **stage_cfg}
            params = _prefixes(name, 'params', stage_cfg.pop('params', ()))
            exclude = _prefixes(name, 'exclude', stage_cfg.pop('exclude', ()))
            paramwise = stage_cfg.pop('paramwise_cfg', None)
            self.constructors[name] = _SelectedParams(stage_cfg, paramwise, params, exclude)

    def __call__(self, model: nn.Module) -> StageOptimWrapperDict:
        wrappers = {}
        for name, constructor in self.constructors.items():
            if not constructor.param_groups(model):
                raise ConfigError(f'optim_wrapper.{name}: the stage has no parameters to train')
            wrappers[name] = constructor(model)
        return StageOptimWrapperDict(**wrappers)
