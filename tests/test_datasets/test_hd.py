import os

import pytest
from PIL import Image

from promptsg.datasets.hd import HD
from promptsg.errors import ConfigError, DataError
from promptsg.registry import DATASETS

# ids 1-9 are protocol ids (1-5 train, 6-9 test by the half rule), 502-504 distractors.
IMAGES = {pid: 1 + pid % 3 for pid in range(1, 10)} | {502: 2, 503: 1, 504: 3}


@pytest.fixture(scope='module')
def hd_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('hd')
    for pid, n in IMAGES.items():
        folder = root / 'Original Images' / ('1-501' if pid < 502 else '502-712')
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            Image.new('RGB', (8, 8), (pid % 256, k, 0)).save(folder / f'{pid}_{k + 1}.jpg')
    (root / 'ReadMe.txt').write_text('not an image')
    return root


def build(root, split, **kwargs):
    return HD(str(root), split=split, pipeline=[], lazy_init=False, **kwargs)


def pids_of(dataset, indices=None):
    data = dataset.data_list
    return [data[i]['pid'] for i in (range(len(data)) if indices is None else indices)]


def test_train_val_test_ids(hd_root):
    train, val = build(hd_root, 'train', relabel=False), build(hd_root, 'val')
    test = build(hd_root, 'test', num_splits=3)
    assert set(pids_of(train)) <= {1, 2, 3, 4, 5}
    assert set(pids_of(val)) == {1, 2, 3, 4, 5}
    assert set(pids_of(test)) == {6, 7, 8, 9, 502, 503, 504}
    assert len(test) == sum(IMAGES[p] for p in (6, 7, 8, 9, 502, 503, 504))
    assert all(s['aspect'] == 'dorsal' and s['camid'] == -1 for s in test.data_list)
    assert build(hd_root, 'train').metainfo['num_classes'] == len(set(pids_of(train)))


def test_val_holds_out_one_image_per_multi_image_id(hd_root):
    train, val = build(hd_root, 'train', relabel=False), build(hd_root, 'val')
    queries = [s for s in val.data_list if s['is_query']]
    assert sorted(s['pid'] for s in queries) == [p for p in range(1, 6) if IMAGES[p] >= 2]
    assert {s['img_path'] for s in train.data_list} == {
        s['img_path'] for s in val.data_list if not s['is_query']
    }


def test_distractors_in_every_gallery(hd_root):
    test = build(hd_root, 'test', num_splits=3)
    distractors = [i for i, s in enumerate(test.data_list) if s['pid'] >= 502]
    assert len(distractors) == IMAGES[502] + IMAGES[503] + IMAGES[504]
    for split in test.metainfo['splits']:
        assert set(distractors) <= set(split['gallery'])
        assert not set(distractors) & set(split['query'])
        own = [p for p in pids_of(test, split['gallery']) if p < 502]
        assert sorted(own) == [6, 7, 8, 9]
        assert sorted(split['query'] + split['gallery']) == list(range(len(test)))
    assert not any(test.data_list[i]['is_query'] for i in distractors)


def test_splits_seeded(hd_root):
    a = build(hd_root, 'test', num_splits=4, seed=0)
    assert a.metainfo['splits'] == build(hd_root, 'test', num_splits=4, seed=0).metainfo['splits']
    others = [build(hd_root, 'test', num_splits=4, seed=s).metainfo['splits'] for s in (1, 2)]
    assert any(o != a.metainfo['splits'] for o in others)


def test_published_rule_and_registry(hd_root):
    with pytest.raises(DataError, match='0 test ids'):
        build(hd_root, 'train', train_id_rule='published')
    dataset = DATASETS.build(
        dict(type='HD', data_root=str(hd_root), split='val', pipeline=[], lazy_init=False)
    )
    assert isinstance(dataset, HD)
    with pytest.raises(ConfigError, match=r"split '\w+' is not one of \['train', 'val', 'test'\]"):
        build(hd_root, 'gallery')
    with pytest.raises(ConfigError, match='half, published'):
        build(hd_root, 'train', train_id_rule='first')


def test_bad_folders(tmp_path):
    with pytest.raises(DataError, match='Original Images'):
        build(tmp_path, 'train')
    folder = tmp_path / 'Original Images'
    folder.mkdir()
    Image.new('RGB', (8, 8)).save(folder / 'hand.jpg')
    with pytest.raises(DataError, match=r"'<id>_'"):
        build(tmp_path, 'train')
    os.remove(folder / 'hand.jpg')
    Image.new('RGB', (8, 8)).save(folder / '600_1.jpg')
    with pytest.raises(DataError, match='id < 502'):
        build(tmp_path, 'train')
