"""Fixtures of the user-tool tests: a tiny PromptSG checkpoint and loading a tool as a module."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch

from promptsg.apis import ReIDInferencer

ROOT = Path(__file__).resolve().parents[2]
#: A self-contained tiny PromptSG config shared with the API tests.
TINY_CONFIG = ROOT / 'tests' / 'test_apis' / 'tiny_promptsg.py'


@pytest.fixture(scope='session')
def checkpoint(tmp_path_factory) -> Path:
    """A checkpoint of the tiny PromptSG model with seeded random weights."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('ckpt') / 'tiny.pth'
    torch.save({'state_dict': ReIDInferencer(TINY_CONFIG).model.state_dict()}, path)
    return path


@pytest.fixture(scope='session')
def load_tool():
    """``load_tool('search')`` -> ``tools/search.py`` imported as a module (to call its main)."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(
            f'promptsg_tool_{name}', ROOT / 'tools' / f'{name}.py'
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
