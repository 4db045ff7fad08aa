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


@pytest.fixture
def deep_tiny_archs(monkeypatch) -> dict[str, str]:
    """Tiny archs with three last blocks, as ViT-B/16 (12 blocks) and RN50 (layer4: 3), so that
    losses on the intermediate visual states ``img_state_1``/``img_state_2`` can be built.

    Returns the arch name per backbone type."""
    from promptsg.models.backbones import TINY_ARCHS

    vit = {**TINY_ARCHS['tiny-vit']}
    vit['vision_cfg'] = {**vit['vision_cfg'], 'layers': 3}
    rn = {**TINY_ARCHS['tiny-rn']}
    rn['vision_cfg'] = {**rn['vision_cfg'], 'layers': (1, 1, 1, 3)}
    monkeypatch.setitem(TINY_ARCHS, 'tiny-vit-3', vit)
    monkeypatch.setitem(TINY_ARCHS, 'tiny-rn-3', rn)
    return {'CLIPViT': 'tiny-vit-3', 'CLIPResNet': 'tiny-rn-3'}
