"""Every registry of promptsg, and nothing else.

Each registry hangs off mmengine's root registry of the same kind with scope ``promptsg`` so
that the Runner (``default_scope='promptsg'``) finds both our components and mmengine's.
Backbones, heads, losses and prompt modules have no mmengine root of their own: they are
root registries in scope ``promptsg`` (two children of one parent cannot share a scope).
``locations`` import the modules that register into a registry on its first look-up.
"""

from __future__ import annotations

import difflib

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry as _MMRegistry

from promptsg.errors import UnknownComponentError
from promptsg.plugins import check_registration, load_plugins


class Registry(_MMRegistry):
    """mmengine ``Registry`` whose failed look-up raises one line naming the valid choices.

    The first look-up also imports the installed plugins, and a registration that would take a
    name already held raises ``NameClashError`` (rules in ``promptsg.plugins``).
    """

    def import_from_location(self) -> None:
        super().import_from_location()
        load_plugins()

    def _register_module(self, module, module_name=None, force: bool = False) -> None:
        names = module_name or getattr(module, '__name__', None)
        check_registration(self, module, [names] if isinstance(names, str) else names, force)
        super()._register_module(module, module_name, force)

    def names(self) -> list[str]:
        """All names this registry resolves, its ancestors' included, sorted."""
        names, reg = set(), self
        while reg is not None:
            reg.import_from_location()
            names.update(reg.module_dict)
            reg = reg.parent
        return sorted(names)

    def get(self, key):
        obj = super().get(key)
        if obj is None and isinstance(key, str):
            choices = self.names()
            close = difflib.get_close_matches(key, choices, n=max(len(choices), 1), cutoff=0.0)
            raise UnknownComponentError(
                f"unknown {self.name} '{key}'; registered {_plural(self.name)} (closest first): "
                + (', '.join(close) or 'none')
            )
        return obj


def _plural(noun: str) -> str:
    """'loss' -> 'losses', 'backbone' -> 'backbones' (the registries' names)."""
    return noun + ('es' if noun.endswith(('s', 'x', 'sh', 'ch')) else 's')


def _child(name: str, parent: _MMRegistry, *locations: str) -> Registry:
    """A child of mmengine's root ``parent`` in scope ``promptsg``.

    ``locations`` are imported on the first look-up: mmengine's own module of that kind (its
    roots have none, so ``CosineAnnealingLR`` would be missing in a fresh process) and ours.
    """
    return Registry(name, parent=parent, scope='promptsg', locations=list(locations))


# Kinds that mmengine has roots for.
RUNNERS = _child('runner', MMENGINE_RUNNERS, 'mmengine.runner')
LOOPS = _child('loop', MMENGINE_LOOPS, 'mmengine.runner')
HOOKS = _child('hook', MMENGINE_HOOKS, 'mmengine.hooks', 'promptsg.engine.hooks')
LOG_PROCESSORS = _child('log_processor', MMENGINE_LOG_PROCESSORS, 'mmengine.runner')
DATASETS = _child('dataset', MMENGINE_DATASETS, 'mmengine.dataset', 'promptsg.datasets')
DATA_SAMPLERS = _child(
    'data sampler', MMENGINE_DATA_SAMPLERS, 'mmengine.dataset', 'promptsg.datasets'
)
TRANSFORMS = _child('transform', MMENGINE_TRANSFORMS, 'mmengine.dataset', 'promptsg.datasets')
FUNCTIONS = _child('function', MMENGINE_FUNCTIONS, 'mmengine.dataset', 'promptsg.engine.seeding')
MODELS = _child('model', MMENGINE_MODELS, 'mmengine.model', 'promptsg.models')
MODEL_WRAPPERS = _child(
    'model_wrapper', MMENGINE_MODEL_WRAPPERS, 'mmengine.model', 'promptsg.engine.ddp'
)
WEIGHT_INITIALIZERS = _child('weight initializer', MMENGINE_WEIGHT_INITIALIZERS, 'mmengine.model')
OPTIMIZERS = _child('optimizer', MMENGINE_OPTIMIZERS, 'mmengine.optim')
OPTIM_WRAPPERS = _child(
    'optim_wrapper', MMENGINE_OPTIM_WRAPPERS, 'mmengine.optim', 'promptsg.engine.optimizers'
)
OPTIM_WRAPPER_CONSTRUCTORS = _child(
    'optimizer wrapper constructor',
    MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    'mmengine.optim',
    'promptsg.engine.optimizers',
)
PARAM_SCHEDULERS = _child('parameter scheduler', MMENGINE_PARAM_SCHEDULERS, 'mmengine.optim')
METRICS = _child('metric', MMENGINE_METRICS, 'mmengine.evaluator', 'promptsg.evaluation')
EVALUATOR = _child('evaluator', MMENGINE_EVALUATOR, 'mmengine.evaluator')
VISUALIZERS = _child('visualizer', MMENGINE_VISUALIZERS, 'mmengine.visualization')
VISBACKENDS = _child('vis_backend', MMENGINE_VISBACKENDS, 'mmengine.visualization')

# Kinds of our own: model parts built by the model from its sub-configs.
BACKBONES = Registry('backbone', scope='promptsg', locations=['promptsg.models.backbones'])
PROMPT_MODULES = Registry('prompt module', scope='promptsg', locations=['promptsg.models'])
HEADS = Registry('head', scope='promptsg', locations=['promptsg.heads'])
LOSSES = Registry('loss', scope='promptsg', locations=['promptsg.losses'])

#: Registries shown by ``python -m promptsg list``, by kind.
KINDS: dict[str, Registry] = {
    'backbones': BACKBONES,
    'prompt_modules': PROMPT_MODULES,
    'heads': HEADS,
    'losses': LOSSES,
    'models': MODELS,
    'datasets': DATASETS,
    'samplers': DATA_SAMPLERS,
    'transforms': TRANSFORMS,
    'metrics': METRICS,
    'hooks': HOOKS,
    'schedulers': PARAM_SCHEDULERS,
    'optimizers': OPTIMIZERS,
    'optim_wrappers': OPTIM_WRAPPERS,
    'optim_wrapper_constructors': OPTIM_WRAPPER_CONSTRUCTORS,
    'evaluators': EVALUATOR,
    'loops': LOOPS,
    'runners': RUNNERS,
    'log_processors': LOG_PROCESSORS,
    'vis_backends': VISBACKENDS,
    'visualizers': VISUALIZERS,
    'model_wrappers': MODEL_WRAPPERS,
    'weight_initializers': WEIGHT_INITIALIZERS,
    'functions': FUNCTIONS,
}
