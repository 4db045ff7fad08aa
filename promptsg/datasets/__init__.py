"""Data sets, the P×K sampler and transforms; importing registers them."""

from promptsg.datasets import (  # noqa: F401
    folder,
    hands_11k,
    hd,
    market1501,
    samplers,
    synthetic,
    transforms,
)
from promptsg.datasets.base import ReIDDataset

__all__ = ['ReIDDataset']
