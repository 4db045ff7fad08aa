"""ReIDDataPreprocessor: uint8 (B, 3, H, W) -> float normalised with CLIP mean/std, the only
normaliser of the pipeline, identical in training and evaluation."""

from __future__ import annotations

import pytest
import torch

from promptsg.datasets.transforms import CLIP_MEAN, CLIP_STD
from promptsg.models.data_preprocessor import ReIDDataPreprocessor
from promptsg.registry import MODELS


def _expected(inputs: torch.Tensor, mean=CLIP_MEAN, std=CLIP_STD) -> torch.Tensor:
    mean = torch.tensor(mean).view(1, 3, 1, 1)
    std = torch.tensor(std).view(1, 3, 1, 1)
    return (inputs.float() / 255 - mean) / std


@pytest.fixture
def batch() -> dict:
    g = torch.Generator().manual_seed(0)
    return {
        'inputs': torch.randint(0, 256, (4, 3, 8, 4), dtype=torch.uint8, generator=g),
        'data_samples': {'pid': torch.tensor([0, 0, 1, 1]), 'aspect': ['', '', '', '']},
    }


@pytest.mark.parametrize('training', [True, False])
def test_normalises_with_clip_statistics(batch, training):
    out = ReIDDataPreprocessor()(batch, training)
    assert out['inputs'].dtype == torch.float32
    torch.testing.assert_close(out['inputs'], _expected(batch['inputs']), rtol=1e-5, atol=1e-5)
    assert out['data_samples'] is not None
    assert torch.equal(out['data_samples']['pid'], batch['data_samples']['pid'])
    assert out['data_samples']['aspect'] == batch['data_samples']['aspect']


def test_extremes_map_to_clip_range():
    inputs = torch.stack([torch.zeros(3, 2, 2), torch.full((3, 2, 2), 255.0)]).to(torch.uint8)
    out = ReIDDataPreprocessor()({'inputs': inputs})['inputs']
    for c in range(3):
        assert out[0, c].unique().item() == pytest.approx(-CLIP_MEAN[c] / CLIP_STD[c], rel=1e-5)
        assert out[1, c].unique().item() == pytest.approx(
            (1 - CLIP_MEAN[c]) / CLIP_STD[c], rel=1e-5
        )


def test_list_of_images_is_stacked(batch):
    listed = {'inputs': list(batch['inputs'])}
    out = ReIDDataPreprocessor()(listed)['inputs']
    assert out.shape == (4, 3, 8, 4)
    torch.testing.assert_close(out, _expected(batch['inputs']), rtol=1e-5, atol=1e-5)
    assert ReIDDataPreprocessor()(listed)['data_samples'] is None


def test_custom_statistics_and_registry_build(batch):
    pre = MODELS.build(dict(type='ReIDDataPreprocessor', mean=(0.5, 0.5, 0.5), std=(0.5,) * 3))
    torch.testing.assert_close(
        pre(batch)['inputs'],
        _expected(batch['inputs'], (0.5,) * 3, (0.5,) * 3),
        rtol=1e-5,
        atol=1e-5,
    )


def test_statistics_are_not_in_the_state_dict():
    """Buffers are derived from the config; checkpoints stay free of them."""
    assert ReIDDataPreprocessor().state_dict() == {}
