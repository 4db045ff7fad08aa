"""SyntheticReID: seeded pixels, identities that look different, splits that never leak test ids."""

from __future__ import annotations

import numpy as np
import pytest

from promptsg.datasets.synthetic import SyntheticReID, draw_person
from promptsg.errors import ConfigError

SIZES = dict(num_train_ids=6, num_test_ids=3, images_per_id=4, img_size=(32, 16), num_cameras=2)


def _images(dataset: SyntheticReID) -> list[np.ndarray]:
    return [dataset.get_data_info(i)['img'] for i in range(len(dataset))]


def test_same_seed_same_pixels_other_seed_other_pixels():
    first = _images(SyntheticReID(split='train', seed=3, **SIZES))
    again = _images(SyntheticReID(split='train', seed=3, **SIZES))
    other = _images(SyntheticReID(split='train', seed=4, **SIZES))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not any(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
    assert first[0].dtype == np.uint8 and first[0].shape == (32, 16, 3)


def test_identities_differ_more_than_images_of_one_identity():
    size = (64, 32)

    def dist(a, b):
        return np.abs(a.astype(float) - b.astype(float)).mean()

    same, different = [], []
    for pid in range(8):
        a, b = draw_person(0, pid, 0, size), draw_person(0, pid, 1, size)
        same.append(dist(a, b))
        different.append(dist(a, draw_person(0, pid + 8, 0, size)))
        assert not np.array_equal(a, b)
    assert np.mean(different) > np.mean(same)


def test_train_split_relabelled_and_complete():
    train = SyntheticReID(split='train', **SIZES)
    pids = [s['pid'] for s in train.data_list]
    assert sorted(set(pids)) == list(range(6))
    assert all(pids.count(p) == 4 for p in range(6))
    assert train.metainfo['num_classes'] == 6
    assert {s['camid'] for s in train.data_list} == {0, 1}
    assert not train.test_mode


def test_val_uses_training_ids_only_with_held_out_queries():
    train = SyntheticReID(split='train', **SIZES)
    val = SyntheticReID(split='val', **SIZES)
    query = [s for s in val.data_list if s['is_query']]
    gallery = [s for s in val.data_list if not s['is_query']]
    assert {s['pid'] for s in val.data_list} == set(range(6))
    assert sorted(s['pid'] for s in query) == list(range(6))
    train_images = {(s['pid'], s['draw_index']) for s in train.data_list}
    assert not {(s['pid'], s['draw_index']) for s in query} & train_images
    assert {(s['pid'], s['draw_index']) for s in gallery} == train_images
    assert val.test_mode


def test_test_ids_are_disjoint_from_training_ids():
    test = SyntheticReID(split='test', **SIZES)
    pids = {s['pid'] for s in test.data_list}
    assert pids == {6, 7, 8}
    query = [s for s in test.data_list if s['is_query']]
    assert sorted(s['pid'] for s in query) == [6, 7, 8]
    assert len(test) == 3 * 4
    train_pixels = {draw_person(0, p, i, (32, 16)).tobytes() for p in range(6) for i in range(5)}
    assert not any(img.tobytes() in train_pixels for img in _images(test))


def test_items_pack_to_uint8_tensors():
    dataset = SyntheticReID(
        split='test', pipeline=[dict(type='LoadImage'), dict(type='PackReIDInputs')], **SIZES
    )
    item = dataset[1]
    assert item['inputs'].shape == (3, 32, 16)
    assert str(item['inputs'].dtype) == 'torch.uint8'
    assert item['data_samples']['pid'] == 6
    assert item['data_samples']['camid'] == 1
    assert item['data_samples']['sample_idx'] == 1
    assert item['data_samples']['is_query'] is False


@pytest.mark.parametrize(
    'kwargs, match',
    [
        (dict(split='query'), "split 'query'"),
        (dict(images_per_id=1), 'images_per_id >= 2'),
        (dict(num_cameras=0), 'num_cameras >= 1'),
    ],
)
def test_bad_arguments_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SyntheticReID(**{**SIZES, **kwargs})
