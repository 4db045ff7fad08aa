"""The statistics table: rows per subset, query and gallery apart, logged once at build time."""

from __future__ import annotations

from PIL import Image

from promptsg.datasets.market1501 import Market1501
from promptsg.datasets.statistics import dataset_statistics, format_statistics


def _market(root):
    files = {
        'bounding_box_train': ['0002_c1s1_000101_01.jpg', '0002_c2s1_000102_01.jpg'],
        'query': ['0010_c1s1_000201_00.jpg'],
        'bounding_box_test': ['0010_c2s1_000301_01.jpg', '0000_c4s1_000303_01.jpg'],
    }
    for sub, names in files.items():
        (root / sub).mkdir()
        for name in names:
            Image.new('RGB', (4, 8)).save(root / sub / name)
    return str(root)


def test_rows_per_subset(tmp_path):
    root = _market(tmp_path)
    train = Market1501(root, split='train')
    assert dataset_statistics(train) == [dict(subset='train', ids=1, images=2, cameras=2)]
    test = Market1501(root, split='test')
    assert dataset_statistics(test) == [
        dict(subset='query', ids=1, images=1, cameras=1),
        dict(subset='gallery', ids=2, images=2, cameras=2),
    ]


def test_unknown_cameras_and_format():
    class Samples:
        split = 'val'
        data_list = [
            dict(pid=1, camid=-1, is_query=True),
            dict(pid=1, camid=-1, is_query=False),
            dict(pid=2, camid=-1, is_query=False),
        ]

    rows = dataset_statistics(Samples())
    assert rows == [
        dict(subset='val/query', ids=1, images=1, cameras='-'),
        dict(subset='val/gallery', ids=2, images=2, cameras='-'),
    ]
    text = format_statistics('Hands11k (val)', rows)
    lines = text.splitlines()
    assert lines[0] == 'Hands11k (val) statistics:'
    assert lines[1].split() == ['subset', 'ids', 'images', 'cameras']
    assert lines[3].split() == ['val/query', '1', '1', '-']
    assert lines[4].split() == ['val/gallery', '2', '2', '-']


def test_built_data_set_logs_its_table_once(tmp_path, capsys):
    from mmengine.logging import MMLogger

    MMLogger.get_instance('test_statistics', log_level='INFO')
    root = _market(tmp_path)
    dataset = Market1501(root, split='test')
    dataset.full_init()
    out = capsys.readouterr().out + capsys.readouterr().err
    assert out.count('Market1501 (test) statistics:') == 1
    assert 'gallery' in out
