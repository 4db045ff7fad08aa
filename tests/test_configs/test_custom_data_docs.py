"""docs/custom_data.md works as published: its script runs and its configs build their data sets.

The code blocks are read from the page itself (each starts with a comment naming its file), so
the page cannot drift from what is tested. The configs are written beside a copy of
``configs/_base_`` (their ``_base_`` paths are relative) and loaded from a folder holding small
fixtures in the layouts the page describes.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from promptsg.engine.config import fill_num_classes, load_config
from promptsg.registry import DATASETS

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / 'docs' / 'custom_data.md'
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def code_blocks() -> dict[str, str]:
    """``{file name: code}`` of the page's Python blocks whose first line is ``# <file>``."""
    blocks = re.findall(r'```python\n(.*?)```', PAGE.read_text(encoding='utf-8'), re.S)
    named = {}
    for block in blocks:
        first = block.splitlines()[0]
        match = re.match(r'# ([\w/.-]+\.py)\b', first)
        if match:
            named[match.group(1)] = block
    return named


BLOCKS = code_blocks()


def _image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', (8, 16), (40, 80, 120)).save(path)


def identity_tree(root: Path, ids: range, cameras: bool, per_id: int = 4) -> None:
    for pid in ids:
        for i in range(per_id):
            name = f'{pid:04d}_c{i % 2 + 1}_{i}.jpg' if cameras else f'{pid:04d}_{i}.jpg'
            _image(root / f'person{pid}' / name)


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """A copy of configs/_base_ beside configs/custom/, and the working directory there."""
    shutil.copytree(ROOT / 'configs' / '_base_', tmp_path / 'configs' / '_base_')
    (tmp_path / 'configs' / 'custom').mkdir()
    for name, code in BLOCKS.items():
        if name.startswith('configs/'):
            (tmp_path / name).write_text(code, encoding='utf-8')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def build_all(config: Path) -> dict:
    cfg = load_config(str(config))
    fill_num_classes(cfg)
    built = {loader: DATASETS.build(cfg[loader].dataset.to_dict()) for loader in LOADERS}
    return {'cfg': cfg, **built}


def rows(dataset) -> list[dict]:
    return [dataset.get_data_info(i) for i in range(len(dataset))]


def test_the_page_publishes_the_script_and_both_configs():
    assert set(BLOCKS) == {
        'configs/custom/my_folder_reid.py',
        'configs/custom/my_csv_reid.py',
        'make_lists.py',
    }


@pytest.mark.parametrize('cameras', [True, False])
def test_folder_config_builds_train_val_test(workspace, cameras):
    data = workspace / 'data' / 'my_reid'
    identity_tree(data / 'train', range(1, 21), cameras)
    identity_tree(data / 'test' / 'query', range(30, 33), cameras, per_id=2)
    identity_tree(data / 'test' / 'gallery', range(30, 33), cameras, per_id=3)
    config = workspace / 'configs' / 'custom' / 'my_folder_reid.py'
    if not cameras:
        text = config.read_text().replace("camid_pattern = r'_c(\\d+)'", 'camid_pattern = None')
        config.write_text(text)
    built = build_all(config)
    assert built['cfg'].model.num_classes == 18  # 2 of 20 ids held out for validation
    train, val, test = (rows(built[loader]) for loader in LOADERS)
    assert len(train) == 72 and {r['pid'] for r in train} == set(range(18))
    assert {r['img_path'] for r in train}.isdisjoint(r['img_path'] for r in val)
    assert len(val) == 8  # the 2 held-out ids' images
    assert sum(r['is_query'] for r in val) == (4 if cameras else 2)
    assert sum(r['is_query'] for r in test) == 6
    assert {r['camid'] for r in train} == ({1, 2} if cameras else {-1})


@pytest.mark.parametrize('cameras', [True, False])
def test_make_lists_then_csv_config(workspace, cameras):
    data = workspace / 'data' / 'my_reid'
    identity_tree(data / 'train', range(20), cameras)
    identity_tree(data / 'test', range(100, 105), cameras)
    (workspace / 'make_lists.py').write_text(BLOCKS['make_lists.py'], encoding='utf-8')
    cmd = [sys.executable, 'make_lists.py', 'data/my_reid']
    if cameras:
        cmd += ['--camid-pattern', r'_c(\d+)']
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(cmd, cwd=workspace, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert 'train.csv: 80 images, 20 ids' in done.stdout
    assert 'test.csv: 20 images, 5 ids' in done.stdout
    with open(data / 'test.csv', newline='') as f:
        header = next(csv.reader(f))
    assert header == (
        ['path', 'pid', 'camid', 'is_query'] if cameras else ['path', 'pid', 'is_query']
    )

    built = build_all(workspace / 'configs' / 'custom' / 'my_csv_reid.py')
    assert built['cfg'].model.num_classes == 18  # 2 of 20 ids held out for validation
    train, val, test = (rows(built[loader]) for loader in LOADERS)
    train_paths = {r['img_path'] for r in train}
    assert train_paths.isdisjoint(r['img_path'] for r in val)  # validation ids not trained on
    assert (train_paths | {r['img_path'] for r in val}).isdisjoint(r['img_path'] for r in test)
    # one query per camera and id when cameras are known, one per id when not
    assert sum(r['is_query'] for r in val) == (4 if cameras else 2)
    assert sum(r['is_query'] for r in test) == (10 if cameras else 5)
    assert {r['camid'] for r in test} == ({1, 2} if cameras else {-1})
