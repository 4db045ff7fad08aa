"""Optimiser wrapper constructors (parameter groups, one optimiser per stage) and wrapper
(non-finite guard, autocast)."""

from promptsg.engine.optimizers.constructor import ReIDOptimWrapperConstructor
from promptsg.engine.optimizers.optim_wrapper import NonFiniteLossError, ReIDOptimWrapper
from promptsg.engine.optimizers.stages import StageOptimWrapperConstructor, StageOptimWrapperDict

__all__ = [
    'NonFiniteLossError',
    'ReIDOptimWrapper',
    'ReIDOptimWrapperConstructor',
    'StageOptimWrapperConstructor',
    'StageOptimWrapperDict',
]
