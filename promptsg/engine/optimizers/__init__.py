"""Optimiser wrapper constructor (parameter groups) and wrapper (non-finite guard, autocast)."""

from promptsg.engine.optimizers.constructor import ReIDOptimWrapperConstructor
from promptsg.engine.optimizers.optim_wrapper import NonFiniteLossError, ReIDOptimWrapper

__all__ = ['NonFiniteLossError', 'ReIDOptimWrapper', 'ReIDOptimWrapperConstructor']
