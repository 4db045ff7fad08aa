import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from promptsg.datasets.folder import CSVDataset
from promptsg.datasets.hands_11k import ASPECTS, DISTRACTOR_PID_OFFSET, Hands11k
from promptsg.errors import ConfigError, DataError
from promptsg.registry import DATASETS

REPO = Path(__file__).resolve().parents[2]
MINI = REPO / '..' / 'shared' / 'data' / '11k_hands_mini'
# (train ids, test ids) of the mini sample under the published thresholds.
MINI_IDS = {
    'dorsal right': (52, 42),
    'dorsal left': (42, 55),
    'palmar right': (51, 42),
    'palmar left': (60, 59),
}
needs_mini = pytest.mark.skipif(not MINI.is_dir(), reason='11k_hands_mini not available')


def build(split, aspects='dorsal right', **kwargs):
    return Hands11k(str(MINI), split=split, aspects=aspects, pipeline=[], lazy_init=False, **kwargs)


def mini_rows(aspect):
    """(pid, imageName) of the accessory-free rows of ``aspect``, read independently."""
    with open(MINI / 'HandInfo.csv', newline='') as f:
        return {
            (int(r['id'].strip()), r['imageName'])
            for r in csv.DictReader(f)
            if r['aspectOfHand'] == aspect and r['accessories'] == '0'
        }


def names(dataset, indices=None):
    data = dataset.data_list
    picked = range(len(data)) if indices is None else indices
    return {os.path.basename(data[i]['img_path']) for i in picked}


@needs_mini
@pytest.mark.parametrize('aspect', ASPECTS)
def test_aspect_counts_and_disjoint_ids(aspect):
    train, val, test = build('train', aspect), build('val', aspect), build('test', aspect)
    n_train, n_test = MINI_IDS[aspect]
    assert train.metainfo['num_classes'] == n_train
    assert sorted({s['pid'] for s in train.data_list}) == list(range(n_train))
    assert len({s['pid'] for s in val.data_list}) == n_train
    test_ids = {s['pid'] for s in test.data_list}
    assert len(test_ids) == n_test
    assert not test_ids & {s['pid'] for s in val.data_list}
    assert not names(test) & names(val)
    # train + val + test cover exactly the aspect's accessory-free rows
    assert names(val) | names(test) == {name for _, name in mini_rows(aspect)}
    assert names(train) < names(val)
    for dataset in (train, val, test):
        assert {s['aspect'] for s in dataset.data_list} == {aspect}
        assert dataset.metainfo['aspects'] == [aspect]
        assert all(s['camid'] == -1 for s in dataset.data_list)


@needs_mini
def test_published_thresholds_on_raw_ids():
    val, test = build('val', 'dorsal left'), build('test', 'dorsal left')
    assert max(s['pid'] for s in val.data_list) <= 1037
    assert min(s['pid'] for s in test.data_list) > 1037
    assert 9000000 in {s['pid'] for s in test.data_list}


@needs_mini
def test_val_one_query_per_training_id():
    train, val = build('train'), build('val')
    queries = [s for s in val.data_list if s['is_query']]
    per_id = {}
    for s in val.data_list:
        per_id.setdefault(s['pid'], []).append(s)
    multi = {pid for pid, items in per_id.items() if len(items) >= 2}
    assert sorted(s['pid'] for s in queries) == sorted(multi)
    assert {os.path.basename(s['img_path']) for s in queries}.isdisjoint(names(train))
    assert len(train) == len(val) - len(queries)
    assert 'splits' not in val.metainfo


@needs_mini
def test_test_splits_one_gallery_image_per_id():
    test = build('test', num_splits=4)
    splits = test.metainfo['splits']
    assert len(splits) == 4
    pids = [s['pid'] for s in test.data_list]
    for split in splits:
        assert sorted(pids[i] for i in split['gallery']) == sorted(set(pids))
        assert sorted(split['query'] + split['gallery']) == list(range(len(test)))
    assert [s['is_query'] for s in test.data_list] == [
        i in set(splits[0]['query']) for i in range(len(test))
    ]


@needs_mini
def test_splits_are_seeded():
    a, b = build('test', seed=0), build('test', seed=0)
    assert a.metainfo['splits'] == b.metainfo['splits']
    assert a.data_list == b.data_list
    assert build('test', seed=1).metainfo['splits'] != a.metainfo['splits']
    held = {s['img_path'] for s in build('val').data_list if s['is_query']}
    assert held == {s['img_path'] for s in build('val').data_list if s['is_query']}
    other = {s['img_path'] for s in build('val', seed=1).data_list if s['is_query']}
    assert other != held


@needs_mini
def test_all_aspects_gallery_adds_other_aspects_as_distractors():
    own = build('test', num_splits=3)
    merged = build('test', num_splits=3, gallery='all_aspects')
    total_test_ids = sum(n_test for _, n_test in MINI_IDS.values())
    own_paths = names(own)
    for k, (split_own, split_all) in enumerate(
        zip(own.metainfo['splits'], merged.metainfo['splits'])
    ):
        assert len(split_all['gallery']) == total_test_ids
        assert names(merged, split_all['query']) == names(own, split_own['query'])
        assert names(merged, split_all['gallery']) & own_paths == names(own, split_own['gallery'])
        for aspect in ASPECTS[1:]:
            distractors = {
                os.path.basename(merged.data_list[i]['img_path'])
                for i in split_all['gallery']
                if merged.data_list[i]['aspect'] == aspect
            }
            other = build('test', aspect, num_splits=3)
            assert distractors == names(other, other.metainfo['splits'][k]['gallery'])
    own_ids = {s['pid'] for s in own.data_list}
    extra = [s for s in merged.data_list if s['aspect'] != 'dorsal right']
    assert all(s['pid'] >= DISTRACTOR_PID_OFFSET and not s['is_query'] for s in extra)
    assert not own_ids & {s['pid'] for s in extra}
    assert merged.metainfo['aspects'] == ['dorsal right']


@needs_mini
def test_half_rule_over_several_aspects():
    aspects = ['dorsal right', 'palmar left']
    train = build('train', aspects, train_id_rule='half', relabel=False)
    test = build('test', aspects, train_id_rule='half')
    train_ids, test_ids = {s['pid'] for s in train.data_list}, {s['pid'] for s in test.data_list}
    assert not train_ids & test_ids
    assert max(train_ids) < min(test_ids)
    assert abs(len(train_ids) - len(test_ids)) <= 1
    assert train.metainfo['aspects'] == aspects
    with pytest.raises(ConfigError, match='half'):
        build('train', aspects)


@needs_mini
def test_registered_and_bad_options():
    dataset = DATASETS.build(
        dict(type='Hands11k', data_root=str(MINI), split='val', pipeline=[], lazy_init=False)
    )
    assert isinstance(dataset, Hands11k)
    with pytest.raises(ConfigError, match="'dorsal right'"):
        build('train', 'dorsal_right')
    with pytest.raises(ConfigError, match=r"split '\w+' is not one of \['train', 'val', 'test'\]"):
        build('query')
    with pytest.raises(ConfigError, match='own, all_aspects'):
        build('test', gallery='merged')


@needs_mini
def test_prepare_11k_tool_round_trip(tmp_path):
    out = tmp_path / 'out'
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'prepare_11k.py'), str(MINI), '--out', str(out)]
        + ['--aspects', 'dorsal right', '--num-splits', '2'],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert 'dorsal right' in result.stdout
    expected = {'train.csv', 'val.csv'} | {
        f'test_split{k}_{p}.csv' for k in range(2) for p in ('query', 'gallery')
    }
    assert {p.name for p in out.iterdir()} == expected
    test = build('test', num_splits=2)
    gallery = CSVDataset(
        str(MINI), ann_file=str(out / 'test_split1_gallery.csv'), pipeline=[], lazy_init=False
    )
    assert names(gallery) == names(test, test.metainfo['splits'][1]['gallery'])
    val = CSVDataset(str(MINI), ann_file=str(out / 'val.csv'), pipeline=[], lazy_init=False)
    assert [s['is_query'] for s in val.data_list] == [s['is_query'] for s in build('val').data_list]


def make_fake_11k(root, rows, header='id,accessories,aspectOfHand,imageName'):
    (root / 'Hands').mkdir(parents=True)
    lines = [header] + [','.join(map(str, r)) for r in rows]
    (root / 'HandInfo.csv').write_text('\r\n'.join(lines) + '\r\n')
    for r in rows:
        Image.new('RGB', (8, 8)).save(root / 'Hands' / r[-1])


FAKE_ROWS = [
    (f'{pid:07d}' + (' ' if pid == 1200000 else ''), 0, aspect, f'Hand_{pid}_{n}_{i}.jpg')
    for i, aspect in enumerate(ASPECTS)
    for pid in (3, 1000, 1060, 1200000)
    for n in range(2)
]


def test_fake_11k_strips_ids(tmp_path):
    make_fake_11k(tmp_path, FAKE_ROWS)
    test = Hands11k(str(tmp_path), split='test', num_splits=2, pipeline=[], lazy_init=False)
    assert {s['pid'] for s in test.data_list} == {1060, 1200000}
    train = Hands11k(str(tmp_path), split='train', pipeline=[], lazy_init=False)
    assert len(train) == 2 and train.metainfo['num_classes'] == 2


def test_bad_input(tmp_path):
    with pytest.raises(DataError, match='HandInfo.csv'):
        make_fake_11k(tmp_path / 'a', FAKE_ROWS)
        (tmp_path / 'a' / 'HandInfo.csv').unlink()
        Hands11k(str(tmp_path / 'a'), pipeline=[])
    make_fake_11k(tmp_path / 'b', FAKE_ROWS)
    (tmp_path / 'b' / 'Hands').rename(tmp_path / 'b' / 'images')
    with pytest.raises(DataError, match='not found: .*b.Hands'):
        Hands11k(str(tmp_path / 'b'), pipeline=[])
    make_fake_11k(tmp_path / 'c', [r[:2] + r[3:] for r in FAKE_ROWS], header='id,accessories,x')
    with pytest.raises(DataError, match='aspectOfHand, imageName'):
        Hands11k(str(tmp_path / 'c'), pipeline=[])
    make_fake_11k(tmp_path / 'd', [r for r in FAKE_ROWS if r[2] != 'palmar left'])
    Hands11k(str(tmp_path / 'd'), split='test', pipeline=[])
    with pytest.raises(DataError, match="'palmar left'"):
        Hands11k(str(tmp_path / 'd'), split='test', gallery='all_aspects', pipeline=[])
    make_fake_11k(tmp_path / 'e', [('12x', 0, 'dorsal right', 'a.jpg')])
    with pytest.raises(DataError, match='line 2'):
        Hands11k(str(tmp_path / 'e'), pipeline=[])
    make_fake_11k(tmp_path / 'f', FAKE_ROWS)
    (tmp_path / 'f' / 'Hands' / FAKE_ROWS[0][-1]).unlink()
    with pytest.raises(DataError, match='missing'):
        Hands11k(str(tmp_path / 'f'), split='val', pipeline=[])
    with pytest.raises(DataError, match='0 test ids'):
        make_fake_11k(tmp_path / 'g', [r for r in FAKE_ROWS if int(r[0]) < 1060])
        Hands11k(str(tmp_path / 'g'), pipeline=[])
