"""ConcatReIDDataset: joint training with offset pids/cameras, several test sets with domains."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from promptsg.datasets import ReIDDataset
from promptsg.datasets.concat import ConcatReIDDataset
from promptsg.datasets.samplers import PKSampler
from promptsg.errors import ConfigError
from promptsg.registry import DATASETS


def _layout(root: Path, files: dict[str, list[str]]) -> str:
    for sub, names in files.items():
        (root / sub).mkdir(parents=True, exist_ok=True)
        for name in names:
            Image.new('RGB', (4, 8)).save(root / sub / name)
    return str(root)


@pytest.fixture
def market(tmp_path) -> str:
    return _layout(
        tmp_path / 'market',
        {
            'bounding_box_train': ['0002_c1s1_000101_01.jpg', '0002_c6s1_000102_01.jpg'],
            'query': ['0010_c1s1_000201_00.jpg'],
            'bounding_box_test': ['0010_c2s1_000301_01.jpg'],
        },
    )


@pytest.fixture
def duke(tmp_path) -> str:
    return _layout(
        tmp_path / 'duke',
        {
            'bounding_box_train': [
                '0005_c2_f0046985.jpg',
                '0005_c5_f0051291.jpg',
                '0007_c1_f0047943.jpg',
            ],
            'query': ['0010_c1_f0057641.jpg'],
            'bounding_box_test': ['0010_c3_f0060012.jpg', '0011_c8_f0060013.jpg'],
        },
    )


def test_joint_training_offsets_pids_and_cameras(market, duke):
    joint = DATASETS.build(
        dict(
            type='ConcatReIDDataset',
            datasets=[
                dict(type='Market1501', data_root=market),
                dict(type='DukeMTMCreID', data_root=duke),
            ],
            pipeline=[dict(type='LoadImage'), dict(type='PackReIDInputs')],
        )
    )
    assert [(s['pid'], s['camid'], s['domain']) for s in joint.data_list] == [
        (0, 0, 'market1501'),
        (0, 5, 'market1501'),
        (1, 6 + 1, 'dukemtmcreid'),  # Duke's cameras follow Market's 6
        (1, 6 + 4, 'dukemtmcreid'),
        (2, 6 + 0, 'dukemtmcreid'),
    ]
    assert joint.metainfo['num_classes'] == 3 and not joint.test_mode
    assert joint.metainfo['domains'] == {'market1501': [0, 2], 'dukemtmcreid': [2, 5]}
    assert joint[3]['data_samples']['domain'] == 'dukemtmcreid'
    assert joint[3]['data_samples']['pid'] == 1
    batch = list(PKSampler(joint, batch_size=4, num_instances=2, seed=0))[:4]
    assert len({joint.data_list[i]['pid'] for i in batch}) == 2  # P=2 identities of the three


def test_test_sets_keep_their_domains_and_never_share_ids(market, duke):
    tests = ConcatReIDDataset(
        [
            dict(type='Market1501', data_root=market, split='test'),
            dict(type='DukeMTMCreID', data_root=duke, split='test', name='duke'),
        ]
    )
    assert tests.test_mode
    rows = [(s['pid'], s['domain'], s['is_query']) for s in tests.data_list]
    assert rows == [
        (10, 'market1501', True),
        (10, 'market1501', False),
        (11 + 10, 'duke', True),  # Market's pids end at 10: Duke's start at 11
        (11 + 10, 'duke', False),
        (11 + 11, 'duke', False),
    ]
    assert tests.metainfo['domains'] == {'market1501': [0, 2], 'duke': [2, 5]}


def test_colliding_ids_without_offsets_are_one_line(market, duke):
    with pytest.raises(
        ConfigError, match=r"'market1501' and 'dukemtmcreid' share pids \(e.g. 10\); set offset"
    ):
        ConcatReIDDataset(
            [
                dict(type='Market1501', data_root=market, split='test'),
                dict(type='DukeMTMCreID', data_root=duke, split='test'),
            ],
            offset=False,
        )
    kept = ConcatReIDDataset(
        [
            dict(type='Market1501', data_root=market, split='test'),
            dict(type='DukeMTMCreID', data_root=duke, relabel=False, test_mode=True),
        ],
        offset=False,
    )
    assert [s['pid'] for s in kept.data_list] == [10, 10, 5, 5, 7]  # disjoint: kept as they are
    assert [s['camid'] for s in kept.data_list] == [0, 1, 1, 4, 0]


def test_bad_member_lists_are_config_errors(market, duke):
    with pytest.raises(ConfigError, match='at least one'):
        ConcatReIDDataset([])
    with pytest.raises(ConfigError, match='mixes training and evaluation sets'):
        ConcatReIDDataset(
            [
                dict(type='Market1501', data_root=market),
                dict(type='DukeMTMCreID', data_root=duke, split='test'),
            ]
        )
    with pytest.raises(ConfigError, match="share the name 'market1501'; give each"):
        ConcatReIDDataset(
            [dict(type='Market1501', data_root=market), dict(type='Market1501', data_root=duke)]
        )
    with pytest.raises(ConfigError, match=r'datasets\[1\] has a pipeline'):
        ConcatReIDDataset(
            [
                dict(type='Market1501', data_root=market),
                dict(type='DukeMTMCreID', data_root=duke, pipeline=[dict(type='LoadImage')]),
            ]
        )


class SplitSet(ReIDDataset):
    """Four gallery-style samples with given Monte-Carlo splits (as the hand sets have)."""

    def __init__(self, root, splits, **kwargs):
        self.root, self.given = root, splits
        super().__init__(data_root=root, test_mode=True, check_images=False, **kwargs)

    def load_samples(self):
        if self.given:
            self._metainfo['splits'] = self.given
        return [
            dict(img_path=str(self.root / f'{i}.jpg'), pid=i // 2, is_query=i % 2 == 0)
            for i in range(4)
        ]


def test_monte_carlo_splits_are_shifted(tmp_path):
    for i in range(4):
        Image.new('RGB', (2, 2)).save(tmp_path / f'{i}.jpg')
    hands = SplitSet(tmp_path, [{'query': [0], 'gallery': [1, 2, 3]}] * 2, name='hands')
    plain = SplitSet(tmp_path, None, name='plain')
    both = ConcatReIDDataset([hands, plain])
    assert both.metainfo['splits'] == [{'query': [0, 4, 6], 'gallery': [1, 2, 3, 5, 7]}] * 2
    three = SplitSet(tmp_path, [{'query': [0], 'gallery': [1]}] * 3, name='three')
    with pytest.raises(ConfigError, match=r'different numbers of Monte-Carlo splits \[2, 3\]'):
        ConcatReIDDataset([hands, three])
