"""Data faults as one DataError naming the file and row: an image listed as both query and
gallery (or dropped with ``duplicates='drop'``), duplicate training rows reported, CSVs that
are not UTF-8 or are cut mid-row, and images over PIL's decompression-bomb limit."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.logging import MMLogger
from PIL import Image

from promptsg.datasets import base
from promptsg.datasets.folder import CSVDataset
from promptsg.datasets.hands_11k import Hands11k
from promptsg.datasets.transforms import LoadImage
from promptsg.errors import DataError

REPO = Path(__file__).resolve().parents[2]
MINI = REPO / '..' / 'shared' / 'data' / '11k_hands_mini'
needs_mini = pytest.mark.skipif(not MINI.is_dir(), reason='11k_hands_mini not available')


def _images(root: Path, n: int) -> list[str]:
    names = []
    for i in range(n):
        name = f'img_{i}.png'
        Image.new('RGB', (16, 16), (i * 20, 0, 0)).save(root / name)
        names.append(name)
    return names


def _csv(root: Path, rows: list[str], name: str = 'list.csv') -> str:
    (root / name).write_text('\n'.join(['path,pid,camid,is_query', *rows]) + '\n')
    return name


def test_a_query_repeated_as_gallery_row_is_an_error_naming_both_lines(tmp_path):
    _images(tmp_path, 3)
    rows = ['img_0.png,1,0,1', 'img_1.png,1,1,0', 'img_2.png,2,1,0', 'img_0.png,1,0,0']
    ann = _csv(tmp_path, rows)
    with pytest.raises(DataError) as info:
        CSVDataset(str(tmp_path), ann, test_mode=True)
    message = str(info.value)
    assert '1 image(s) listed twice in CSVDataset' in message
    assert 'img_0.png as query (list.csv line 2) and gallery (list.csv line 5)' in message
    assert "duplicates='drop'" in message

    kept = CSVDataset(str(tmp_path), ann, test_mode=True, duplicates='drop')
    assert [(os.path.basename(s['img_path']), s['is_query']) for s in kept.data_list] == [
        ('img_0.png', True),
        ('img_1.png', False),
        ('img_2.png', False),
    ]


def test_duplicate_training_rows_are_reported(tmp_path, capsys):
    _images(tmp_path, 2)
    ann = _csv(tmp_path, ['img_0.png,1,0,0', 'img_1.png,2,0,0', 'img_0.png,1,0,0'])
    MMLogger.get_instance('data_faults', log_level=logging.INFO)
    capsys.readouterr()
    data = CSVDataset(str(tmp_path), ann, split='train')
    assert len(data) == 3  # reported, kept
    out = ''.join(capsys.readouterr())
    assert '1 image(s) listed twice in CSVDataset (split train)' in out
    assert 'list.csv line 2' in out and 'list.csv line 4' in out
    assert len(CSVDataset(str(tmp_path), ann, split='train', duplicates='drop')) == 2


def test_a_csv_that_is_not_utf8_names_the_line(tmp_path):
    _images(tmp_path, 2)
    (tmp_path / 'list.csv').write_bytes(
        'path,pid\nimg_0.png,1\nimg_1.png,2 # caf\xe9\n'.encode('latin-1')
    )
    with pytest.raises(DataError, match=r'list\.csv line 3: byte 0xe9 is not UTF-8 text'):
        CSVDataset(str(tmp_path), 'list.csv')


def test_a_csv_cut_mid_row_names_the_line(tmp_path):
    _images(tmp_path, 2)
    (tmp_path / 'list.csv').write_text('path,pid,camid\nimg_0.png,1,0\nimg_1.png')
    with pytest.raises(DataError, match=r'list\.csv line 3: 1 of 3 fields, no pid, camid'):
        CSVDataset(str(tmp_path), 'list.csv')


def _hands_root(tmp_path: Path, text: bytes) -> Path:
    root = tmp_path / 'hands'
    root.mkdir()
    (root / 'Hands').symlink_to((MINI / 'Hands').resolve())
    (root / 'HandInfo.csv').write_bytes(text)
    return root


@needs_mini
def test_hand_info_cut_mid_row_fails_naming_the_row(tmp_path):
    text = (MINI / 'HandInfo.csv').read_bytes()
    cut = text[: text.rindex(b',dorsal', 0, len(text) // 2)]  # mid-row, half-way down
    root = _hands_root(tmp_path, cut)
    line = cut.count(b'\n') + 1
    with pytest.raises(DataError, match=rf'HandInfo\.csv line {line}: 6 of 9 fields'):
        Hands11k(str(root), split='test', aspects='dorsal right', pipeline=[])


@needs_mini
def test_hand_info_repeated_row_in_the_test_set_is_an_error(tmp_path):
    lines = (MINI / 'HandInfo.csv').read_bytes().splitlines(keepends=True)
    test_row = next(
        i
        for i, r in enumerate(lines)
        if r.startswith(b'00')
        and b'dorsal right' in r
        and int(r.split(b',')[0]) > 1050
        and b',0,0,dorsal' in r
    )
    root = _hands_root(tmp_path, b''.join(lines + [lines[test_row]]))
    with pytest.raises(
        DataError,
        match=rf'HandInfo\.csv line {test_row + 1} and HandInfo\.csv line '
        rf'{len(lines) + 1}',
    ):
        Hands11k(str(root), split='test', aspects='dorsal right', pipeline=[])
    data = Hands11k(str(root), split='test', aspects='dorsal right', pipeline=[], duplicates='drop')
    names = [s['img_path'] for s in data.data_list]
    assert len(names) == len(set(names))


@needs_mini
def test_prepare_11k_reports_a_hand_info_that_is_not_utf8(tmp_path):
    text = (MINI / 'HandInfo.csv').read_bytes().replace(b'dorsal right', b'dorsal r\xe9ght', 1)
    root = _hands_root(tmp_path, text)
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / 'tools' / 'prepare_11k.py'),
            str(root),
            '--out',
            str(tmp_path / 'out'),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr[-2000:]
    assert run.stderr.strip().splitlines() == [
        f'error: {root / "HandInfo.csv"} line 2: byte 0xe9 is not UTF-8 text; save the file as '
        'UTF-8 (e.g. iconv -f latin1 -t utf-8)'
    ]


def test_an_image_over_the_decompression_bomb_limit_is_refused_in_one_line(tmp_path, monkeypatch):
    _images(tmp_path, 2)
    ann = _csv(tmp_path, ['img_0.png,1,0,1', 'img_1.png,2,0,0'])
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 100)  # 16 x 16 = 256 > 2 x 100
    with pytest.raises(DataError, match='not readable as images .*decompression-bomb limit'):
        CSVDataset(str(tmp_path), ann, test_mode=True)
    assert base.image_problem(str(tmp_path / 'img_0.png')).startswith('over PIL')
    with pytest.raises(DataError, match='cannot read image .*img_0.png: Image size'):
        LoadImage()({'img_path': str(tmp_path / 'img_0.png')})
