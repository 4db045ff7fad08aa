"""MSMT17 in its native layout: V1 and V2 folders, the four lists, cameras, train+val, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from promptsg.datasets.msmt17 import MSMT17
from promptsg.errors import ConfigError, DataError
from promptsg.registry import DATASETS

LISTS = {
    'train': [
        ('0000/0000_000_01_0303morning_0015_0.jpg', 0),
        ('0000/0000_011_05_0303morning_0036_1.jpg', 0),
        ('0001/0001_000_15_0303afternoon_0120_0.jpg', 1),
        ('0001/0001_004_03_0303afternoon_0133_2.jpg', 1),
    ],
    'val': [
        ('0000/0000_020_07_0303noon_0211_0.jpg', 0),
        ('0001/0001_009_02_0303afternoon_0140_0.jpg', 1),
    ],
    'query': [('0000/0000_000_01_0303morning_0008_0.jpg', 0)],
    'gallery': [
        ('0000/0000_003_04_0303afternoon_0451_1.jpg', 0),
        ('0003/0003_010_01_0113noon_0733_0.jpg', 3),
    ],
}


def make_msmt17(root: Path, version: str = 'V1', lists: dict | None = None) -> str:
    train_dir, test_dir = (
        ('train', 'test') if version == 'V1' else ('mask_train_v2', 'mask_test_v2')
    )
    for part, rows in (lists or LISTS).items():
        folder = root / (train_dir if part in ('train', 'val') else test_dir)
        lines = []
        for rel, pid in rows:
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.new('RGB', (2, 4)).save(folder / rel)
            lines.append(f'{rel} {pid}\n')
        (root / f'list_{part}.txt').write_text(''.join(lines))
    (root / train_dir).mkdir(exist_ok=True)
    (root / test_dir).mkdir(exist_ok=True)
    return str(root)


@pytest.mark.parametrize('version', ['V1', 'V2'])
def test_native_layout_names_pids_cameras(tmp_path, version):
    root = make_msmt17(tmp_path, version)
    train_dir = 'train' if version == 'V1' else 'mask_train_v2'
    train = DATASETS.build(dict(type='MSMT17', data_root=root, split='train'))
    assert len(train) == 6  # train_with_val=True: list_train + list_val
    assert all(f'/{train_dir}/' in s['img_path'] for s in train.data_list)
    assert [s['camid'] for s in train.data_list] == [0, 4, 14, 2, 6, 1]
    assert [s['pid'] for s in train.data_list] == [0, 0, 1, 1, 0, 1]
    assert train.metainfo['num_classes'] == 2
    test = MSMT17(root, split='test', version=version)
    assert [(s['pid'], s['camid'], s['is_query']) for s in test.data_list] == [
        (0, 0, True),
        (0, 3, False),
        (3, 0, False),
    ]
    assert len(MSMT17(root, split='query')) == 1 and len(MSMT17(root, split='gallery')) == 2


def test_train_without_val_and_list_validation(tmp_path):
    root = make_msmt17(tmp_path)
    holdout = dict(mode='list')
    train = MSMT17(root, split='train', train_with_val=False, val_holdout=holdout)
    val = MSMT17(root, split='val', train_with_val=False, val_holdout=holdout)
    assert len(train) == 4
    query = [s for s in val.data_list if s['is_query']]
    gallery = [s for s in val.data_list if not s['is_query']]
    assert [s['img_path'].split('/')[-1] for s in query] == [
        '0000_020_07_0303noon_0211_0.jpg',
        '0001_009_02_0303afternoon_0140_0.jpg',
    ]
    assert {s['img_path'] for s in gallery} == {s['img_path'] for s in train.data_list}
    assert not {s['img_path'] for s in query} & {s['img_path'] for s in train.data_list}
    assert val.test_mode and {s['pid'] for s in val.data_list} == {0, 1}


def test_list_validation_refuses_training_on_the_val_list(tmp_path):
    root = make_msmt17(tmp_path)
    with pytest.raises(ConfigError, match='set train_with_val=False'):
        MSMT17(root, split='train', val_holdout=dict(mode='list'))


def test_version_detection_and_missing_folders(tmp_path):
    root = make_msmt17(tmp_path / 'v2', 'V2')
    assert len(MSMT17(root, split='query', version='auto')) == 1
    with pytest.raises(DataError, match=r'need train/ \+ test/ \(V1\) under'):
        MSMT17(root, split='query', version='V1')
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(DataError, match=r'train/ \+ test/ \(V1\) or mask_train_v2/'):
        MSMT17(str(empty), split='train')
    with pytest.raises(ConfigError, match="version='V3' is invalid"):
        MSMT17(str(empty), version='V3')


def test_list_naming_a_missing_image_names_list_and_line(tmp_path):
    root = make_msmt17(tmp_path)
    with open(tmp_path / 'list_gallery.txt', 'a') as f:
        f.write('0009/0009_001_02_0113noon_0001_0.jpg 9\n')
    with pytest.raises(
        DataError, match=r'list_gallery.txt line 3 names a missing image: .*0009_001'
    ):
        MSMT17(root, split='gallery')
    assert len(MSMT17(root, split='gallery', skip_missing=True)) == 2


@pytest.mark.parametrize(
    'line, error',
    [
        ('0000/0000_000_01_0303morning_0099_0.jpg\n', 'expected "<relative path> <pid>"'),
        ('0000/0000_000_01_0303morning_0099_0.jpg zero\n', 'expected "<relative path> <pid>"'),
        ('0000/0000_000.jpg 0\n', 'the third "_" field'),
    ],
)
def test_list_line_that_does_not_parse_names_file_and_line(tmp_path, line, error):
    root = make_msmt17(tmp_path)
    with open(tmp_path / 'list_query.txt', 'a') as f:
        f.write('\n' + line)
    with pytest.raises(DataError, match=rf'list_query.txt line 3: {error}'):
        MSMT17(root, split='query')


def test_missing_list_file(tmp_path):
    root = make_msmt17(tmp_path)
    (tmp_path / 'list_val.txt').unlink()
    with pytest.raises(DataError, match='MSMT17 list file missing: .*list_val.txt'):
        MSMT17(root, split='train')
    assert len(MSMT17(root, split='train', train_with_val=False)) == 4
