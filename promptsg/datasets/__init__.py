"""Data sets, the P×K sampler and transforms; importing registers them."""

from promptsg.datasets import (  # noqa: F401
    concat,
    cuhk03,
    duke,
    folder,
    hands_11k,
    hd,
    market1501,
    msmt17,
    samplers,
    synthetic,
    transforms,
    veri,
)
from promptsg.datasets.base import ReIDDataset

__all__ = ['ReIDDataset']
