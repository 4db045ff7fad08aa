"""Transforms keep images uint8; the model's data preprocessor alone normalises, with CLIP's
statistics, so train and test images are normalised identically (SPEC §5.2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import DefaultScope
from PIL import Image

from promptsg.datasets.transforms import CLIP_MEAN, CLIP_STD
from promptsg.errors import DataError
from promptsg.registry import DATASETS, MODELS, TRANSFORMS

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / 'configs' / 'quickstart' / 'synthetic_promptsg.py'

#: The published CLIP statistics (OpenAI's preprocessing), on the 0-1 scale.
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@pytest.fixture(scope='module')
def quickstart() -> Config:
    cfg = Config.fromfile(str(QUICKSTART))
    for split in ('train', 'val', 'test'):
        dataset = cfg[f'{split}_dataloader'].dataset
        dataset.update(num_train_ids=4, num_test_ids=2, images_per_id=2)
    cfg.model.num_classes = 4
    return cfg


def _item(cfg: Config, split: str, index: int = 0) -> dict:
    return DATASETS.build(cfg[f'{split}_dataloader'].dataset)[index]


def test_clip_statistics_are_the_published_ones():
    assert CLIP_MEAN == OPENAI_CLIP_MEAN and CLIP_STD == OPENAI_CLIP_STD


@pytest.mark.parametrize('split', ['train', 'val', 'test'])
def test_quickstart_pipelines_end_in_uint8(quickstart, split):
    item = _item(quickstart, split)
    assert item['inputs'].dtype == torch.uint8
    assert tuple(item['inputs'].shape) == (3, *quickstart.img_size)
    assert set(item['data_samples']) == {
        'pid',
        'camid',
        'sample_idx',
        'is_query',
        'aspect',
        'domain',
    }
    assert not any(
        'Normal' in t['type'] for t in quickstart[f'{split}_dataloader'].dataset.pipeline
    )


def test_model_preprocessor_normalises_train_and_test_alike_with_clip_stats(quickstart):
    with DefaultScope.overwrite_default_scope('promptsg'):
        model = MODELS.build(quickstart.model)
    preprocessor = model.data_preprocessor
    assert type(preprocessor).__name__ == 'ReIDDataPreprocessor'
    train = default_collate([_item(quickstart, 'train', i) for i in range(2)])
    test = default_collate([_item(quickstart, 'test', i) for i in range(2)])
    for batch, training in ((train, True), (test, False)):
        out = preprocessor(batch, training)['inputs']
        mean = torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1)
        expected = (batch['inputs'].float() / 255 - mean) / std
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    same = train['inputs']
    torch.testing.assert_close(
        preprocessor({'inputs': same}, True)['inputs'],
        preprocessor({'inputs': same}, False)['inputs'],
        rtol=0,
        atol=0,
    )


def test_load_image_accepts_path_array_and_pil(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (6, 4, 3), dtype=np.uint8)
    path = tmp_path / 'a.png'
    Image.fromarray(pixels).save(path)
    load = TRANSFORMS.build(dict(type='LoadImage'))
    from_path = load({'img_path': str(path)})
    from_array = load({'img': pixels})
    from_pil = load({'img': Image.fromarray(pixels)})
    for out in (from_path, from_array, from_pil):
        assert out['img'].dtype == torch.uint8 and out['img'].shape == (3, 6, 4)
        assert torch.equal(out['img'], torch.from_numpy(pixels).permute(2, 0, 1))
        assert out['ori_shape'] == (6, 4)


def test_unreadable_image_is_a_data_error(tmp_path):
    bad = tmp_path / 'broken.jpg'
    bad.write_bytes(b'not a jpeg')
    with pytest.raises(DataError, match='broken.jpg'):
        TRANSFORMS.build(dict(type='LoadImage'))({'img_path': str(bad)})


def test_geometry_and_erasing_keep_uint8_and_size():
    img = torch.randint(0, 256, (3, 32, 16), dtype=torch.uint8)
    results = {'img': img}
    for cfg in (
        dict(type='RandomHorizontalFlip', prob=1.0),
        dict(type='Pad', padding=2),
        dict(type='RandomCrop', size=(32, 16)),
        dict(type='ColorJitter'),
        dict(type='RandomErasing', prob=1.0),
        dict(type='Resize', size=(16, 8)),
    ):
        results = TRANSFORMS.build(cfg)(results)
        assert results['img'].dtype == torch.uint8, cfg['type']
    assert results['img'].shape == (3, 16, 8)
    flipped = TRANSFORMS.build(dict(type='RandomHorizontalFlip', prob=1.0))({'img': img})
    assert torch.equal(flipped['img'], img.flip(-1))


def test_random_erasing_fills_a_block_with_noise():
    torch.manual_seed(0)
    img = torch.full((3, 64, 32), 7, dtype=torch.uint8)
    erased = TRANSFORMS.build(dict(type='RandomErasing', prob=1.0))({'img': img})['img']
    changed = (erased != img).any(0)
    assert 0 < changed.float().mean() < 1
    assert erased[:, changed].float().std() > 20  # random values, not a constant fill


def test_pack_reid_inputs_defaults():
    img = torch.zeros(3, 4, 2, dtype=torch.uint8)
    packed = TRANSFORMS.build(dict(type='PackReIDInputs'))({'img': img, 'pid': 3})
    assert packed['inputs'] is img
    assert packed['data_samples'] == {
        'pid': 3,
        'camid': -1,
        'sample_idx': -1,
        'is_query': False,
        'aspect': '',
        'domain': '',
    }
