"""The DDP wrapper of promptsg: ``find_unused_parameters`` only when the model needs it."""

from __future__ import annotations

from mmengine.model import MMDistributedDataParallel
from torch import nn

from promptsg.errors import ConfigError
from promptsg.registry import MODEL_WRAPPERS


def needs_unused_parameters(module: nn.Module, find_unused_parameters: bool | str) -> bool:
    """Resolve ``'auto'``: True when the model names trainable parts no configured loss reaches
    (``unused_in_training()``), or when the model cannot tell; a bool is kept as given."""
    if isinstance(find_unused_parameters, bool):
        return find_unused_parameters
    if find_unused_parameters != 'auto':
        raise ConfigError(
            "model_wrapper_cfg.find_unused_parameters must be True, False or 'auto'; "
            f'got {find_unused_parameters!r}'
        )
    unused = getattr(module, 'unused_in_training', None)
    return True if unused is None else bool(unused())


@MODEL_WRAPPERS.register_module()
class ReIDDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's ``MMDistributedDataParallel`` with ``find_unused_parameters='auto'`` (the
    default): DDP's extra graph traversal per step runs only when a part goes unused, e.g.
    a head whose loss is switched off (chronology ViT v7)."""

    def __init__(self, module: nn.Module, find_unused_parameters: bool | str = 'auto', **kwargs):
        find = needs_unused_parameters(module, find_unused_parameters)
        super().__init__(module=module, find_unused_parameters=find, **kwargs)
