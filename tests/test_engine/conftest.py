"""Fixtures of the engine tests: tiny configs and one CPU thread."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import write_config


@pytest.fixture
def tiny_config(tmp_path):
    """Factory: ``tiny_config(extra='', **kwargs)`` -> path of a tiny config in ``tmp_path``."""

    def make(extra: str = '', **kwargs) -> Path:
        return write_config(tmp_path, extra, **kwargs)

    return make
