import os

import pytest
from PIL import Image

from promptsg.datasets.folder import CSVDataset, FolderDataset
from promptsg.errors import ConfigError, DataError
from promptsg.registry import DATASETS


def save(path, color=(0, 0, 0)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', (8, 8), color).save(path)


def make_identities(root, names=('10', '2', 'alice')):
    for i, name in enumerate(names):
        for cam in (1, 2):
            save(root / name / f'{name}_c{cam}s1_{i}.jpg', (i, cam, 0))
    (root / names[0] / 'notes.txt').write_text('ignored')
    (root / 'stray.jpg').write_bytes(b'')  # files beside the identity folders are ignored


def build_folder(root, **kwargs):
    return FolderDataset(str(root), pipeline=[], lazy_init=False, **kwargs)


def build_csv(root, ann_file, **kwargs):
    return CSVDataset(str(root), ann_file=str(ann_file), pipeline=[], lazy_init=False, **kwargs)


def test_folder_pids_in_sorted_order(tmp_path):
    make_identities(tmp_path)
    dataset = build_folder(tmp_path)
    by_folder = {
        os.path.basename(os.path.dirname(s['img_path'])): s['pid'] for s in dataset.data_list
    }
    assert by_folder == {'2': 0, '10': 1, 'alice': 2}
    assert len(dataset) == 6
    assert all(s['camid'] == -1 and 'is_query' not in s for s in dataset.data_list)
    assert dataset.metainfo['num_classes'] == 3


def test_folder_camid_pattern(tmp_path):
    make_identities(tmp_path)
    dataset = build_folder(tmp_path, camid_pattern=r'_c(\d+)s', aspect='dorsal right')
    for s in dataset.data_list:
        assert f'_c{s["camid"]}s' in os.path.basename(s['img_path'])
        assert s['aspect'] == 'dorsal right'
    assert {s['camid'] for s in dataset.data_list} == {1, 2}
    assert dataset.metainfo['aspects'] == ['dorsal right']
    with pytest.raises(DataError, match='finds no camera number'):
        build_folder(tmp_path, camid_pattern=r'_cam(\d+)')
    with pytest.raises(ConfigError, match='exactly one group'):
        build_folder(tmp_path, camid_pattern=r'_c\d+')
    with pytest.raises(ConfigError, match='not a valid regex'):
        build_folder(tmp_path, camid_pattern=r'_c(\d+')


def test_folder_query_gallery_share_pids(tmp_path):
    make_identities(tmp_path / 'query', names=('7', '3'))
    make_identities(tmp_path / 'gallery', names=('3', '7', '9'))
    dataset = build_folder(tmp_path, query_dir='query', gallery_dir='gallery')
    assert dataset.test_mode
    pids = {}
    for s in dataset.data_list:
        part, name = s['img_path'].split(os.sep)[-3:-1]
        assert s['is_query'] == (part == 'query')
        pids.setdefault(name, set()).add(s['pid'])
    assert pids == {'3': {0}, '7': {1}, '9': {2}}
    with pytest.raises(ConfigError, match='together'):
        build_folder(tmp_path, query_dir='query')


def test_folder_relabel_and_registry(tmp_path):
    make_identities(tmp_path / 'gallery', names=('3', '7', '9'))
    dataset = DATASETS.build(
        dict(type='FolderDataset', data_root=str(tmp_path / 'gallery'), relabel=True, pipeline=[])
    )
    assert sorted({s['pid'] for s in dataset.data_list}) == [0, 1, 2]


def test_folder_bad_input(tmp_path):
    make_identities(tmp_path)
    (tmp_path / 'empty_id').mkdir()
    with pytest.raises(DataError, match='empty_id'):
        build_folder(tmp_path)
    (tmp_path / 'none').mkdir()
    with pytest.raises(DataError, match='no identity folders'):
        build_folder(tmp_path / 'none')
    with pytest.raises(DataError, match='not found'):
        build_folder(tmp_path, query_dir='q', gallery_dir='g')


def write_csv(path, text):
    path.write_text(text)
    return path


def test_csv_dataset(tmp_path):
    save(tmp_path / 'imgs' / 'a.jpg')
    save(tmp_path / 'imgs' / 'b.jpg')
    ann = write_csv(
        tmp_path / 'list.csv',
        'note,path,pid,camid,is_query,aspect\n'
        'x,imgs/a.jpg,5,2,true,palmar left\n'
        'y,imgs/b.jpg,-1,,0,\n',
    )
    a, b = build_csv(tmp_path, ann, test_mode=True).data_list
    assert a['img_path'] == str(tmp_path / 'imgs' / 'a.jpg')
    assert (a['pid'], a['camid'], a['is_query'], a['aspect']) == (5, 2, True, 'palmar left')
    assert (b['pid'], b['camid'], b['is_query']) == (-1, -1, False)
    assert 'aspect' not in b and 'note' not in a
    minimal = write_csv(tmp_path / 'min.csv', 'pid,path\n9,imgs/a.jpg\n3,imgs/b.jpg\n')
    train = build_csv(tmp_path, minimal, relabel=True)
    assert [s['pid'] for s in train.data_list] == [1, 0]
    assert all('is_query' not in s for s in train.data_list)
    relative = build_csv(tmp_path, 'min.csv')
    assert len(relative) == 2


def test_csv_bad_input(tmp_path):
    save(tmp_path / 'a.jpg')
    with pytest.raises(DataError, match='path, pid'):
        build_csv(tmp_path, write_csv(tmp_path / '1.csv', 'file,id\na.jpg,1\n'))
    with pytest.raises(DataError, match='line 3: pid'):
        build_csv(tmp_path, write_csv(tmp_path / '2.csv', 'path,pid\na.jpg,1\na.jpg,one\n'))
    with pytest.raises(DataError, match='line 2: is_query'):
        build_csv(tmp_path, write_csv(tmp_path / '3.csv', 'path,pid,is_query\na.jpg,1,maybe\n'))
    with pytest.raises(DataError, match='line 2: camid'):
        build_csv(tmp_path, write_csv(tmp_path / '4.csv', 'path,pid,camid\na.jpg,1,c1\n'))
    with pytest.raises(DataError, match='missing'):
        build_csv(tmp_path, write_csv(tmp_path / '5.csv', 'path,pid\nb.jpg,1\n'))
    with pytest.raises(DataError, match='no images'):
        build_csv(tmp_path, write_csv(tmp_path / '6.csv', 'path,pid\n'))
    with pytest.raises(DataError, match='not found'):
        build_csv(tmp_path, tmp_path / 'absent.csv')
    with pytest.raises(ConfigError, match='ann_file'):
        build_csv(tmp_path, '')


def test_folder_accepts_every_format_pil_decodes(tmp_path):
    """PGM/PPM identity folders (and other PIL formats) load; other files are still ignored."""
    (tmp_path / 'a').mkdir()
    Image.new('L', (8, 8), 50).save(tmp_path / 'a' / 'a_0.pgm')
    Image.new('RGB', (8, 8)).save(tmp_path / 'a' / 'a_1.ppm')
    (tmp_path / 'b').mkdir()
    Image.new('RGB', (8, 8)).save(tmp_path / 'b' / 'b_0.tga')
    (tmp_path / 'b' / 'notes.txt').write_text('ignored')
    dataset = DATASETS.build(
        dict(
            type='FolderDataset',
            data_root=str(tmp_path),
            pipeline=[dict(type='LoadImage'), dict(type='PackReIDInputs')],
        )
    )
    names = sorted(os.path.basename(s['img_path']) for s in dataset.data_list)
    assert names == ['a_0.pgm', 'a_1.ppm', 'b_0.tga']
    assert dataset[0]['inputs'].shape == (3, 8, 8)  # greyscale PGM read as RGB
    (tmp_path / 'c').mkdir()
    (tmp_path / 'c' / 'notes.txt').write_text('no image here')
    with pytest.raises(DataError, match=r"/c' has no images \(.jpg, .png, .*\.pgm"):
        build_folder(tmp_path)


def test_folder_and_csv_val_holdout(tmp_path):
    for pid in range(6):
        for cam in (1, 2):
            save(tmp_path / f'p{pid}' / f'p{pid}_c{cam}.jpg', (pid, cam, 0))
    holdout = dict(mode='ids', size=2, seed=0)
    kwargs = dict(camid_pattern=r'_c(\d+)', val_holdout=holdout)
    train = build_folder(tmp_path, split='train', **kwargs)
    val = build_folder(tmp_path, split='val', **kwargs)
    assert train.metainfo['num_classes'] == 4 and sorted({s['pid'] for s in train}) == [0, 1, 2, 3]
    assert not train.test_mode and val.test_mode
    train_dirs = {os.path.dirname(s['img_path']) for s in train.data_list}
    val_dirs = {os.path.dirname(s['img_path']) for s in val.data_list}
    assert len(val_dirs) == 2 and not train_dirs & val_dirs
    assert sum(s['is_query'] for s in val.data_list) == 2  # 2 images per id: 1 query keeps a match
    rows = ''.join(f'p{p}/p{p}_c{c}.jpg,{p}\n' for p in range(6) for c in (1, 2))
    ann = write_csv(tmp_path / 'list.csv', 'path,pid\n' + rows)
    images = dict(mode='images', seed=1)
    csv_train = build_csv(tmp_path, ann, split='train', val_holdout=images)
    csv_val = build_csv(tmp_path, ann, split='val', val_holdout=images)
    assert len(csv_train) == 6 and len(csv_val) == 12
    assert sum(s['is_query'] for s in csv_val.data_list) == 6


def test_val_holdout_needs_a_training_set(tmp_path):
    make_identities(tmp_path / 'query')
    make_identities(tmp_path / 'gallery')
    with pytest.raises(ConfigError, match='has its own query/gallery'):
        build_folder(
            tmp_path, query_dir='query', gallery_dir='gallery', val_holdout=dict(mode='images')
        )
    with pytest.raises(ConfigError, match="needs split='train' or split='val', got None"):
        build_folder(tmp_path / 'query', val_holdout=dict(mode='images'))
    save(tmp_path / 'a.jpg')
    save(tmp_path / 'b.jpg')
    ann = write_csv(tmp_path / 'q.csv', 'path,pid,is_query\na.jpg,1,1\nb.jpg,1,0\n')
    with pytest.raises(ConfigError, match='has its own query/gallery'):
        build_csv(tmp_path, ann, split='val', val_holdout=dict(mode='images'))
    assert len(build_csv(tmp_path, ann, split='val')) == 2  # a ready-made val list needs none
