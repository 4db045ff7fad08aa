"""val_holdout: validation carved from training ids only, seeded, with no test pid or image."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image
from test_msmt17 import make_msmt17

from promptsg.datasets.holdout import check_val_holdout
from promptsg.datasets.market1501 import Market1501
from promptsg.datasets.msmt17 import MSMT17
from promptsg.datasets.protocols import hold_out_ids, query_per_camera
from promptsg.errors import ConfigError

SHARED_DATA = Path(__file__).resolve().parents[2] / '..' / 'shared' / 'data'


def make_market(root: Path, train_ids: int = 10, test_ids: int = 4) -> str:
    """Train ids 1..n with 2-3 cameras and 2-4 images each; test ids from 501, disjoint."""
    files = {'bounding_box_train': [], 'query': [], 'bounding_box_test': []}
    for pid in range(1, train_ids + 1):
        for k in range(2 + pid % 3):
            files['bounding_box_train'].append(
                f'{pid:04d}_c{1 + k % 3}s1_{pid * 10 + k:06d}_01.jpg'
            )
    for pid in range(501, 501 + test_ids):
        files['query'] += [f'{pid:04d}_c1s1_{pid:06d}_00.jpg']
        files['bounding_box_test'] += [
            f'{pid:04d}_c2s1_{pid:06d}_01.jpg',
            f'0000_c3s1_{pid:06d}_01.jpg',
        ]
    for sub, names in files.items():
        (root / sub).mkdir(parents=True)
        for name in names:
            Image.new('RGB', (2, 4)).save(root / sub / name)
    return str(root)


def _raw_pid(sample: dict) -> int:
    return int(os.path.basename(sample['img_path']).split('_')[0])


def _msmt17_identity(sample: dict) -> tuple[str, int]:
    """MSMT17 numbers test ids from 0 again: an identity is (image folder, pid folder)."""
    folder, pid_dir = Path(sample['img_path']).parts[-3:-1]
    return folder, int(pid_dir)


def _leak_check(train, val, test, identity=_raw_pid) -> None:
    test_paths = {s['img_path'] for s in test.data_list}
    test_ids = {identity(s) for s in test.data_list}
    for part in (train, val):
        assert not {s['img_path'] for s in part.data_list} & test_paths
        assert not {identity(s) for s in part.data_list} & test_ids
    assert sum(s['is_query'] for s in val.data_list) > 0


HOLDOUTS = [dict(mode='ids', size=0.3, seed=1), dict(mode='ids', size=2), dict(mode='images')]


@pytest.mark.parametrize('holdout', HOLDOUTS)
def test_no_test_pid_or_image_reaches_train_or_val_market(tmp_path, holdout):
    root = make_market(tmp_path)
    train = Market1501(root, split='train', val_holdout=holdout)
    val = Market1501(root, split='val', val_holdout=holdout)
    _leak_check(train, val, Market1501(root, split='test'))


@pytest.mark.parametrize('holdout', HOLDOUTS + [dict(mode='list')])
def test_no_test_pid_or_image_reaches_train_or_val_msmt17(tmp_path, holdout):
    root = make_msmt17(tmp_path)
    kwargs = dict(val_holdout=holdout, train_with_val=holdout['mode'] != 'list')
    if holdout['mode'] == 'ids':
        kwargs['val_holdout'] = dict(holdout, size=1)  # two training ids here
    train = MSMT17(root, split='train', **kwargs)
    val = MSMT17(root, split='val', **kwargs)
    _leak_check(train, val, MSMT17(root, split='test'), _msmt17_identity)


def test_no_leak_on_cuhk03_mini():
    root = SHARED_DATA / 'cuhk03_mini'
    if not root.is_dir():
        pytest.skip('../shared/data/cuhk03_mini is absent')
    holdout = dict(mode='ids', size=10)
    train = Market1501(str(root), split='train', val_holdout=holdout)
    val = Market1501(str(root), split='val', val_holdout=holdout)
    _leak_check(train, val, Market1501(str(root), split='test'))
    assert train.metainfo['num_classes'] == 40
    assert len({s['pid'] for s in val.data_list}) == 10


def test_ids_mode_splits_training_ids_and_keeps_a_match_per_query(tmp_path):
    root = make_market(tmp_path)
    holdout = dict(mode='ids', size=0.3, seed=0)
    train = Market1501(root, split='train', val_holdout=holdout, relabel=False)
    val = Market1501(root, split='val', val_holdout=holdout)
    train_ids = {s['pid'] for s in train.data_list}
    val_ids = {s['pid'] for s in val.data_list}
    assert len(val_ids) == 3 and not train_ids & val_ids
    assert train_ids | val_ids == set(range(1, 11))
    assert len(train) + len(val) == len(os.listdir(Path(root) / 'bounding_box_train'))
    assert val.test_mode and not train.test_mode
    query = [s for s in val.data_list if s['is_query']]
    gallery = [s for s in val.data_list if not s['is_query']]
    assert max(Counter((s['pid'], s['camid']) for s in query).values()) == 1
    for q in query:  # the camera rule leaves a match for every query
        assert any(g['pid'] == q['pid'] and g['camid'] != q['camid'] for g in gallery)
    relabelled = Market1501(root, split='train', val_holdout=holdout)
    assert relabelled.metainfo['num_classes'] == 7
    assert sorted({s['pid'] for s in relabelled.data_list}) == list(range(7))


def test_holdout_is_seeded_and_order_free():
    ids = list(range(100))
    assert hold_out_ids(ids, 10, seed=0) == hold_out_ids(ids[::-1], 10, seed=0)
    assert hold_out_ids(ids, 10, seed=0) != hold_out_ids(ids, 10, seed=1)
    assert set(hold_out_ids(ids, 5, seed=3)) <= set(hold_out_ids(ids, 10, seed=3))


def test_query_per_camera_rule():
    # id 1 (cameras 0, 0, 1): a query on each camera would leave camera 0's query no gallery
    # image from camera 1, so it goes back to the gallery and camera 1's image is the query.
    pids = [1, 1, 1, 2, 2, 3, 3, 4]
    camids = [0, 0, 1, 0, 0, -1, -1, 2]
    query = query_per_camera(pids, camids, seed=0)
    assert [p for p in query if pids[p] == 1] == [2]
    assert not [p for p in query if pids[p] == 2]  # one camera: gallery-only
    assert len([p for p in query if pids[p] == 3]) == 1  # unknown cameras: one query
    assert not [p for p in query if pids[p] == 4]  # one image: gallery-only


def test_images_mode_holds_out_one_image_per_id(tmp_path):
    root = make_market(tmp_path)
    holdout = dict(mode='images', seed=0)
    train = Market1501(root, split='train', val_holdout=holdout, relabel=False)
    val = Market1501(root, split='val', val_holdout=holdout)
    query = [s for s in val.data_list if s['is_query']]
    assert len(query) == 10 and len({s['pid'] for s in query}) == 10
    assert len(val) == len(os.listdir(Path(root) / 'bounding_box_train'))
    train_paths = {s['img_path'] for s in train.data_list}
    assert not {s['img_path'] for s in query} & train_paths
    assert {s['img_path'] for s in val.data_list if not s['is_query']} == train_paths
    again = Market1501(root, split='val', val_holdout=holdout)
    assert [s['is_query'] for s in again.data_list] == [s['is_query'] for s in val.data_list]


def test_holdout_leaving_no_training_or_val_id_is_one_line(tmp_path):
    root = make_market(tmp_path, train_ids=4)
    with pytest.raises(ConfigError, match=r'holds out 4 of 4 training ids and leaves no training'):
        Market1501(root, split='train', val_holdout=dict(mode='ids', size=4))
    with pytest.raises(ConfigError, match=r'size=0.1 of 4 training ids holds out no id'):
        Market1501(root, split='val', val_holdout=dict(mode='ids', size=0.1))


def test_holdout_without_any_query_is_one_line(tmp_path):
    single = tmp_path / 'single'
    (single / 'bounding_box_train').mkdir(parents=True)
    for pid in (1, 2, 3):
        Image.new('RGB', (2, 4)).save(single / 'bounding_box_train' / f'{pid:04d}_c1s1_0_01.jpg')
    with pytest.raises(ConfigError, match='no validation query .*single image'):
        Market1501(str(single), split='val', val_holdout=dict(mode='images'))
    (single / 'bounding_box_train' / '0001_c1s1_1_01.jpg').write_bytes(
        (single / 'bounding_box_train' / '0001_c1s1_0_01.jpg').read_bytes()
    )
    with pytest.raises(ConfigError, match='no validation query'):  # id 1: one camera only
        Market1501(str(single), split='val', val_holdout=dict(mode='ids', size=2, seed=0))


@pytest.mark.parametrize(
    'holdout, error',
    [
        (dict(mode='pids'), r"use None \| dict\(mode='ids'\) \| dict\(mode='images'\)"),
        ('ids', 'is invalid'),
        (dict(mode='images', size=3), "mode='images' does not take size; its keys: mode, seed"),
        (dict(mode='ids', size=1.5), 'size must be a fraction 0 < size < 1 or a count'),
        (dict(mode='ids', size=0), 'size must be a fraction'),
        (dict(mode='ids', seed=-1), 'seed must be a non-negative integer'),
        (dict(mode='list'), r"dict\(mode='images'\)$"),
    ],
)
def test_bad_val_holdout_names_the_key(holdout, error):
    with pytest.raises(ConfigError, match=error):
        check_val_holdout(holdout, 'Market1501')
