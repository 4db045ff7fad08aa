"""Fixtures of the engine tests: tiny configs and one CPU thread."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from engine_helpers import write_config


@pytest.fixture
def tiny_config(tmp_path):
    """Factory: ``tiny_config(extra='', **kwargs)`` -> path of a tiny config in ``tmp_path``."""

    def make(extra: str = '', **kwargs) -> Path:
        return write_config(tmp_path, extra, **kwargs)

    return make


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: tiny models run ~10x faster than with threads fighting for 2 cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
