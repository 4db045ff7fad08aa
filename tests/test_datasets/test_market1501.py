"""Market-1501 layout: file-name parsing, relabelling, query/gallery flags, junk and distractors."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from promptsg.datasets.market1501 import Market1501
from promptsg.errors import ConfigError, DataError
from promptsg.registry import DATASETS

SHARED_DATA = Path(__file__).resolve().parents[2] / '..' / 'shared' / 'data'


@pytest.fixture
def cuhk03_mini() -> str:
    root = SHARED_DATA / 'cuhk03_mini'
    if not root.is_dir():
        pytest.skip('../shared/data/cuhk03_mini is absent')
    return str(root.resolve())


def _names(root: str, sub: str) -> list[str]:
    return [n for n in os.listdir(os.path.join(root, sub)) if n.endswith('.jpg')]


def test_cuhk03_mini_train_relabels_all_50_ids(cuhk03_mini):
    dataset = Market1501(cuhk03_mini, split='train')
    files = _names(cuhk03_mini, 'bounding_box_train')
    raw_ids = sorted({int(n.split('_')[0]) for n in files})
    assert raw_ids == list(range(50))  # the mini set uses 0000 as a real training identity
    pids = [s['pid'] for s in dataset.data_list]
    assert sorted(set(pids)) == list(range(50))
    assert dataset.metainfo['num_classes'] == 50
    assert len(dataset) == len(files)
    assert not dataset.test_mode


def test_cuhk03_mini_relabel_keeps_order_and_cameras(cuhk03_mini):
    dataset = Market1501(cuhk03_mini, split='train')
    for sample in dataset.data_list:
        name = os.path.basename(sample['img_path'])
        raw_pid, cam = name.split('_')[:2]
        assert sample['camid'] == int(cam[1]) - 1
        assert sample['pid'] == int(raw_pid)  # raw ids 0..49 are already contiguous
    assert {s['camid'] for s in dataset.data_list} == {0, 1}


def test_cuhk03_mini_test_split_queries_and_gallery(cuhk03_mini):
    dataset = Market1501(cuhk03_mini, split='test')
    query = [s for s in dataset.data_list if s['is_query']]
    gallery = [s for s in dataset.data_list if not s['is_query']]
    assert len(query) == 100
    assert len(gallery) == len(_names(cuhk03_mini, 'bounding_box_test'))
    per_id_camera = Counter((s['pid'], s['camid']) for s in query)
    assert set(per_id_camera.values()) == {1}
    assert {pid for pid, _ in per_id_camera} == set(range(50, 100))
    assert Counter(cam for _, cam in per_id_camera) == {0: 50, 1: 50}
    assert {s['pid'] for s in gallery} == set(range(50, 100))  # raw pids, not relabelled
    assert all(os.path.basename(os.path.dirname(s['img_path'])) == 'query' for s in query)
    assert dataset.test_mode
    train_ids = {s['pid'] for s in Market1501(cuhk03_mini, split='train').data_list}
    assert not train_ids & {s['pid'] for s in dataset.data_list}


def test_cuhk03_mini_query_and_gallery_splits_alone(cuhk03_mini):
    query = Market1501(cuhk03_mini, split='query')
    gallery = Market1501(cuhk03_mini, split='gallery')
    assert len(query) == 100 and all(s['is_query'] for s in query.data_list)
    assert not any(s['is_query'] for s in gallery.data_list)


def _market(root: Path, files: dict[str, list[str]]) -> str:
    for sub, names in files.items():
        (root / sub).mkdir(parents=True, exist_ok=True)
        for i, name in enumerate(names):
            Image.new('RGB', (8, 16), (i, 0, 0)).save(root / sub / name)
    return str(root)


@pytest.fixture
def tiny_market(tmp_path) -> str:
    return _market(
        tmp_path,
        {
            'bounding_box_train': [
                '0002_c1s1_000101_01.jpg',
                '0002_c2s1_000102_01.jpg',
                '0007_c3s2_000103_01.jpg',
                '-1_c1s1_000104_01.jpg',
            ],
            'query': ['0010_c1s1_000201_00.jpg', '0011_c6s1_000202_00.jpg'],
            'bounding_box_test': [
                '0010_c2s1_000301_01.jpg',
                '0011_c1s1_000302_01.jpg',
                '0000_c1s1_000303_01.jpg',
                '0000_c4s1_000304_01.jpg',
                '-1_c1s1_000305_01.jpg',
                '-1_c2s1_000306_01.jpg',
            ],
        },
    )


def test_junk_dropped_everywhere_and_distractors_kept_in_gallery(tiny_market):
    train = Market1501(tiny_market, split='train')
    assert len(train) == 3
    assert sorted(s['pid'] for s in train.data_list) == [0, 0, 1]
    assert sorted(s['camid'] for s in train.data_list) == [0, 1, 2]
    test = Market1501(tiny_market, split='test')
    gallery = [s for s in test.data_list if not s['is_query']]
    query = [s for s in test.data_list if s['is_query']]
    assert [(s['pid'], s['camid']) for s in query] == [(10, 0), (11, 5)]
    assert sorted(s['pid'] for s in gallery) == [0, 0, 10, 11]
    assert not any('-1_' in os.path.basename(s['img_path']) for s in test.data_list)


def test_identity_0000_in_training_folder_is_kept(tmp_path):
    """CUHK03-NP conversions use 0000 as a real training identity; only -1 is junk."""
    root = _market(
        tmp_path,
        {'bounding_box_train': ['0000_c1s1_000001_00.jpg', '0001_c2s1_000002_00.jpg']},
    )
    train = Market1501(root, split='train')
    assert sorted(s['pid'] for s in train.data_list) == [0, 1]
    assert train.metainfo['num_classes'] == 2


def test_samples_load_through_the_pipeline(tiny_market):
    dataset = DATASETS.build(
        dict(
            type='Market1501',
            data_root=tiny_market,
            split='test',
            pipeline=[
                dict(type='LoadImage'),
                dict(type='Resize', size=(32, 16)),
                dict(type='PackReIDInputs'),
            ],
        )
    )
    item = dataset[0]
    assert item['inputs'].shape == (3, 32, 16)
    assert item['data_samples']['is_query'] and item['data_samples']['pid'] == 10
    assert item['data_samples']['sample_idx'] == 0


def test_bad_layouts_are_data_errors(tmp_path):
    with pytest.raises(DataError, match='data_root does not exist'):
        Market1501(str(tmp_path / 'nowhere'), split='train')
    with pytest.raises(DataError, match='bounding_box_train'):
        Market1501(str(tmp_path), split='train')
    root = _market(tmp_path / 'odd', {'query': ['person1.jpg']})
    with pytest.raises(DataError, match='person1.jpg'):
        Market1501(root, split='query')
    empty = tmp_path / 'empty'
    (empty / 'query').mkdir(parents=True)
    with pytest.raises(DataError, match='no images'):
        Market1501(str(empty), split='query')


def test_unknown_split_names_choices(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"split 'dev' is not one of \['train', 'val', 'query', 'gallery', 'test'\]",
    ):
        Market1501(str(tmp_path), split='dev')


def test_val_split_needs_a_holdout(tiny_market):
    with pytest.raises(ConfigError, match=r"split='val' needs val_holdout=dict\(mode='ids'"):
        Market1501(tiny_market, split='val')


def test_missing_layout_folder_names_it_and_the_layout(tmp_path):
    (tmp_path / 'bounding_box_train').mkdir()
    with pytest.raises(DataError, match=r'folder missing: .*query \(the layout needs'):
        Market1501(str(tmp_path), split='query')
