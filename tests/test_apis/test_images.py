"""Finding images and their identities: Market-1501 names, identity folders, CSV and text lists."""

from __future__ import annotations

import pytest
from PIL import Image

from promptsg.apis.images import ImageRecord, collect_images, identity_from_name, normalise_pid
from promptsg.errors import DataError


def _png(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', (4, 8), (10, 20, 30)).save(path)
    return path


def test_identity_from_market_name_and_folder(tmp_path):
    assert identity_from_name('/x/0050_c2s1_000004_00.jpg') == ('50', 1)
    assert identity_from_name('/x/-1_c1s1_000000_00.jpg') == ('-1', 0)
    assert identity_from_name(str(tmp_path / 'alice' / 'a.png'), str(tmp_path)) == ('alice', -1)
    assert identity_from_name(str(tmp_path / '007' / 'a.png'), str(tmp_path)) == ('7', -1)
    assert identity_from_name(str(tmp_path / 'a.png'), str(tmp_path)) == (None, -1)
    assert identity_from_name(str(tmp_path / 'a.png')) == (None, -1)
    assert normalise_pid(' 0050 ') == '50' and normalise_pid('') is None


def test_folders_are_searched_recursively_in_sorted_order(tmp_path):
    for name in ['b/2.png', 'a/1.jpg', 'a/0.JPG', '.hidden/3.png', 'a/.4.png']:
        _png(tmp_path / name)
    (tmp_path / 'a' / 'notes.txt').write_text('x')
    records = collect_images(tmp_path)
    assert [r.path for r in records] == [
        str(tmp_path / 'a' / '0.JPG'),
        str(tmp_path / 'a' / '1.jpg'),
        str(tmp_path / 'b' / '2.png'),
    ]
    assert [r.pid for r in records] == ['a', 'a', 'b']


def test_lists_give_paths_relative_to_the_list_and_csv_pids_win(tmp_path):
    img = _png(tmp_path / 'imgs' / '0003_c1s1_000000_00.png')
    other = _png(tmp_path / 'imgs' / 'x.png')
    (tmp_path / 'list.txt').write_text('# images\nimgs/0003_c1s1_000000_00.png\n\nimgs/x.png\n')
    assert collect_images(tmp_path / 'list.txt') == [
        ImageRecord(str(img), '3', 0),
        ImageRecord(str(other), None, -1),
    ]
    (tmp_path / 'list.csv').write_text(
        f'path,pid,camid\nimgs/0003_c1s1_000000_00.png,12,5\n{other},,\n'
    )
    assert collect_images(str(tmp_path / 'list.csv')) == [
        ImageRecord(str(img), '12', 5),
        ImageRecord(str(other), None, -1),
    ]


def test_mixed_inputs_keep_their_order(tmp_path):
    a = _png(tmp_path / 'one' / 'a.png')
    b = _png(tmp_path / 'b.png')
    assert [r.path for r in collect_images([b, tmp_path / 'one'])] == [str(b), str(a)]


@pytest.mark.parametrize(
    'name, content, words',
    [
        ('missing.png', None, 'not found'),
        ('notes.md', 'x', 'not an image file'),
        ('empty.txt', '# nothing\n', 'is empty'),
        ('bad.txt', 'nowhere.png\n', 'listed image not found'),
        ('nopath.csv', 'file,pid\na.png,1\n', 'lacks a path column'),
        ('badcam.csv', 'path,camid\nok.png,east\n', 'camid'),
    ],
)
def test_bad_inputs_name_the_problem(tmp_path, name, content, words):
    _png(tmp_path / 'ok.png')
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=words) as info:
        collect_images(tmp_path / name)
    assert name in str(info.value) and '\n' not in str(info.value)


def test_empty_folder_and_empty_input_are_errors(tmp_path):
    with pytest.raises(DataError, match='no images'):
        collect_images(tmp_path)
    with pytest.raises(DataError, match='no images given'):
        collect_images([])
