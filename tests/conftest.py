"""Shared fixtures: the repo root on sys.path, the shared data folder, quiet CPU threads."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Real data beside the project (read-only); tests skip when it is absent.
SHARED_DATA = ROOT.parent / 'shared' / 'data'

torch.set_num_threads(2)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip('../shared/data is absent')
    return SHARED_DATA
