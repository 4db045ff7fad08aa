"""Market-layout siblings on fixtures with their real names: DukeMTMC-reID, Occluded-Duke,
CUHK03-NP (labeled / detected) and VeRi-776."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from promptsg.datasets.cuhk03 import CUHK03NP
from promptsg.datasets.duke import DukeMTMCreID, OccludedDuke
from promptsg.datasets.veri import VeRi776
from promptsg.errors import ConfigError, DataError
from promptsg.registry import DATASETS


def _layout(root: Path, files: dict[str, list[str]]) -> str:
    for sub, names in files.items():
        (root / sub).mkdir(parents=True, exist_ok=True)
        for name in names:
            Image.new('RGB', (2, 4)).save(root / sub / name)
    return str(root)


DUKE = {
    'bounding_box_train': [
        '0005_c2_f0046985.jpg',
        '0005_c5_f0051291.jpg',
        '0007_c1_f0047943.jpg',
        '0007_c8_f0053412.jpg',
    ],
    'query': ['0011_c1_f0057641.jpg', '0011_c6_f0078125.jpg'],
    'bounding_box_test': ['0011_c3_f0060012.jpg', '4103_c7_f0189132.jpg'],
}


@pytest.mark.parametrize('cls', [DukeMTMCreID, OccludedDuke])
def test_duke_names_pids_cameras_and_distractors(tmp_path, cls):
    root = _layout(tmp_path, DUKE)
    train = DATASETS.build(dict(type=cls.__name__, data_root=root, split='train'))
    assert type(train) is cls
    assert [(s['pid'], s['camid']) for s in train.data_list] == [(0, 1), (0, 4), (1, 0), (1, 7)]
    assert train.metainfo['num_classes'] == 2
    test = cls(root, split='test')
    assert [(s['pid'], s['camid'], s['is_query']) for s in test.data_list] == [
        (11, 0, True),
        (11, 5, True),
        (11, 2, False),
        (4103, 6, False),  # a gallery-only distractor id keeps its raw pid
    ]


def test_duke_name_that_does_not_parse_names_the_pattern(tmp_path):
    root = _layout(tmp_path, {'query': ['c2_0005.jpg']})
    with pytest.raises(DataError, match=r'not a DukeMTMCreID file name \(PPPP_cC_fFFFFFFF'):
        DukeMTMCreID(root, split='query')


@pytest.mark.parametrize('subset', ['labeled', 'detected'])
def test_cuhk03np_subsets(tmp_path, subset):
    other = 'detected' if subset == 'labeled' else 'labeled'
    _layout(
        tmp_path / subset,
        {
            'bounding_box_train': ['0001_c1_1.png', '0001_c2_6.png', '0003_c1_2.png'],
            'query': ['1368_c1_3.png'],
            'bounding_box_test': ['1368_c2_7.png', '1369_c2_9.png'],
        },
    )
    _layout(tmp_path / other, {'bounding_box_train': ['0002_c1_1.png']})
    train = CUHK03NP(str(tmp_path), split='train', subset=subset)
    assert all(f'/{subset}/bounding_box_train/' in s['img_path'] for s in train.data_list)
    assert [(s['pid'], s['camid']) for s in train.data_list] == [(0, 0), (0, 1), (1, 0)]
    test = CUHK03NP(str(tmp_path), split='test', subset=subset)
    assert [(s['pid'], s['camid'], s['is_query']) for s in test.data_list] == [
        (1368, 0, True),
        (1368, 1, False),
        (1369, 1, False),
    ]


def test_cuhk03np_bad_subset_and_missing_subset_folder(tmp_path):
    with pytest.raises(ConfigError, match="subset='lab' is invalid; choose from labeled"):
        CUHK03NP(str(tmp_path), subset='lab')
    with pytest.raises(DataError, match=r'CUHK03NP folder missing: .*detected/bounding_box_train'):
        CUHK03NP(str(tmp_path), subset='detected')


def test_veri776_layout(tmp_path):
    root = _layout(
        tmp_path,
        {
            'image_train': [
                '0001_c001_00016450_0.jpg',
                '0001_c002_00016570_0.jpg',
                '0776_c020_00092190_1.jpg',
            ],
            'image_query': ['0002_c002_00030600_0.jpg'],
            'image_test': ['0002_c003_00084270_0.jpg', '0002_c002_00030605_0.jpg'],
        },
    )
    train = VeRi776(root, split='train')
    assert [(s['pid'], s['camid']) for s in train.data_list] == [(0, 0), (0, 1), (1, 19)]
    query = VeRi776(root, split='query')
    gallery = VeRi776(root, split='gallery')
    assert [(s['pid'], s['camid']) for s in query.data_list] == [(2, 1)]
    assert sorted((s['pid'], s['camid']) for s in gallery.data_list) == [(2, 1), (2, 2)]
    assert not any(s['is_query'] for s in gallery.data_list)
    with pytest.raises(DataError, match='image_train, image_query, image_test'):
        VeRi776(str(tmp_path / 'image_query'), split='train')
