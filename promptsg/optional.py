"""Optional dependencies (onnx, onnxruntime, faiss, tensorboard, wandb, mlflow): the core runs
without them, and a feature that needs a missing one fails with one line naming the install."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType

from promptsg.errors import MissingDependencyError

#: pip package of each import name that differs from it.
PIP_NAMES = {'faiss': 'faiss-cpu'}


def require(module: str, feature: str, pip: str | None = None) -> ModuleType:
    """Import ``module`` for ``feature`` (e.g. ``'ONNX export'``), or raise one line saying
    which ``pip install`` provides it.

    Raises:
        MissingDependencyError: the import fails (not installed, or broken).
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        package = pip or PIP_NAMES.get(module, module)
        why = 'is not installed' if _absent(e, module) else f'cannot be imported ({e})'
        raise MissingDependencyError(
            f'{feature} needs the optional package {package}, which {why}: pip install {package}'
        ) from e


def _absent(error: ImportError, module: str) -> bool:
    """Whether the failure is the module itself missing (not an error inside it)."""
    return error.name in (module, module.split('.')[0])


#: mmengine's visualisation backends and the (import, pip) package each needs.
VIS_BACKEND_PACKAGES = {
    'TensorboardVisBackend': ('tensorboard', 'tensorboard'),
    'WandbVisBackend': ('wandb', 'wandb'),
    'MLflowVisBackend': ('mlflow', 'mlflow'),
    'ClearMLVisBackend': ('clearml', 'clearml'),
    'NeptuneVisBackend': ('neptune', 'neptune'),
    'DVCLiveVisBackend': ('dvclive', 'dvclive'),
    'AimVisBackend': ('aim', 'aim'),
}


def check_vis_backends(cfg: Mapping) -> None:
    """Before a run starts: every backend in ``visualizer.vis_backends`` has its package.

    mmengine imports a backend's package only when the backend first logs, and a missing one
    is then a traceback.

    Raises:
        MissingDependencyError: naming the backend and the pip install.
    """
    visualizer = cfg.get('visualizer') or {}
    for backend in visualizer.get('vis_backends') or []:
        name = str(backend.get('type', '')).split('.')[-1] if isinstance(backend, Mapping) else ''
        if name in VIS_BACKEND_PACKAGES:
            module, pip = VIS_BACKEND_PACKAGES[name]
            require(module, f'visualizer.vis_backends {name}', pip)
