"""Shared fixtures: the repo root on sys.path, the shared data folder, one CPU thread."""

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

# One intra-op thread: the tiny test models run several times faster than with two threads
# fighting over CI's two cores (subprocesses of the tests choose their own).
torch.set_num_threads(1)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip('../shared/data is absent')
    return SHARED_DATA
