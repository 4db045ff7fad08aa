"""tools/extract.py: images, folders and lists → features (.npy / .safetensors) + index CSV."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from promptsg.apis import ReIDInferencer
from promptsg.datasets.synthetic import draw_person
from promptsg.errors import CheckpointError, ConfigError, DataError

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / 'tools' / 'extract.py'
TINY_CONFIG = ROOT / 'tests' / 'test_apis' / 'tiny_promptsg.py'


def _read_index(path: Path) -> list[dict]:
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope='module')
def people(tmp_path_factory) -> Path:
    """``people/<pid>/<i>.png``: 3 synthetic identities, 2 images each."""
    root = tmp_path_factory.mktemp('people')
    for pid in (3, 11, 20):
        (root / str(pid)).mkdir()
        for i in range(2):
            Image.fromarray(draw_person(5, pid, i, (96, 48))).save(root / str(pid) / f'{i}.png')
    return root


def test_folder_to_npy_and_index_csv(checkpoint, people, tmp_path):
    out = tmp_path / 'out' / 'feats.npy'
    proc = subprocess.run(
        [sys.executable, str(TOOL), str(TINY_CONFIG), str(checkpoint), str(people)]
        + ['--out', str(out), '--no-progress'],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert '6 embeddings of dimension 64' in proc.stdout
    feats = np.load(out)
    paths = sorted(people.glob('*/*.png'), key=lambda p: (p.parent.name, p.name))
    expected = ReIDInferencer(TINY_CONFIG, checkpoint)(paths, progress=False)
    np.testing.assert_allclose(feats, expected, atol=1e-5)
    rows = _read_index(tmp_path / 'out' / 'feats.csv')
    assert [r['path'] for r in rows] == [str(p) for p in paths]
    assert [r['pid'] for r in rows] == ['11', '11', '20', '20', '3', '3']
    assert [int(r['index']) for r in rows] == list(range(6))
    assert {r['camid'] for r in rows} == {'-1'}


def test_csv_list_to_safetensors_with_the_composed_prompt(checkpoint, people, tmp_path, load_tool):
    from safetensors import safe_open

    listed = [people / '20' / '1.png', people / '3' / '0.png']
    (tmp_path / 'list.csv').write_text(f'path,pid,camid\n{listed[0]},bob,2\n{listed[1]},,\n')
    out, index = tmp_path / 'f.safetensors', tmp_path / 'idx.csv'
    argv = [str(TINY_CONFIG), str(checkpoint), str(tmp_path / 'list.csv'), '--out', str(out)]
    feats = load_tool('extract').main(
        argv + ['--index', str(index), '--prompt', 'composed', '--no-progress']
    )
    with safe_open(str(out), framework='np') as f:
        stored, meta = f.get_tensor('features'), f.metadata()
    np.testing.assert_array_equal(stored, feats)
    expected = ReIDInferencer(TINY_CONFIG, checkpoint, prompt='composed')(listed, progress=False)
    np.testing.assert_allclose(stored, expected, atol=1e-5)
    assert meta['prompt'] == 'composed' and meta['num_images'] == '2'
    rows = _read_index(index)
    assert [(r['pid'], r['camid']) for r in rows] == [('bob', '2'), ('', '-1')]


def test_user_errors_are_one_line(checkpoint, people, tmp_path, load_tool):
    proc = subprocess.run(
        [sys.executable, str(TOOL), str(TINY_CONFIG), str(checkpoint), str(tmp_path / 'nope')]
        + ['--out', str(tmp_path / 'f.npy')],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        f'error: image, folder or list not found: {tmp_path / "nope"}'
    ]
    tool = load_tool('extract')
    base = [str(TINY_CONFIG), str(checkpoint), str(people)]
    with pytest.raises(ConfigError, match=r'\.npy'):
        tool.main(base + ['--out', str(tmp_path / 'f.pt')])
    (tmp_path / 'readme.md').write_text('hello')
    with pytest.raises(DataError, match='not an image file'):
        tool.main(base[:2] + [str(tmp_path / 'readme.md'), '--out', str(tmp_path / 'f.npy')])
    with pytest.raises(CheckpointError, match='not found'):
        tool.main([base[0], str(tmp_path / 'x.pth'), base[2], '--out', str(tmp_path / 'f.npy')])
    assert not (tmp_path / 'f.npy').exists()


def test_cuhk03_mini_query_folder(checkpoint, shared_data, tmp_path, load_tool):
    query = shared_data / 'cuhk03_mini' / 'query'
    if not query.is_dir():
        pytest.skip('cuhk03_mini is absent')
    out = tmp_path / 'query.npy'
    argv = [str(TINY_CONFIG), str(checkpoint), str(query), '--out', str(out), '--no-progress']
    feats = load_tool('extract').main(argv)
    rows = _read_index(tmp_path / 'query.csv')
    names = sorted(p.name for p in query.glob('*.jpg'))
    assert feats.shape == (len(names), 64) and np.load(out).shape == feats.shape
    assert [Path(r['path']).name for r in rows] == names
    for row in rows:
        pid, cam = re.match(r'(\d+)_c(\d+)', Path(row['path']).name).groups()
        assert row['pid'] == str(int(pid)) and row['camid'] == str(int(cam) - 1)
    assert {int(r['pid']) for r in rows} <= set(range(50, 100))


def test_gallery_index_build_extend_and_errors(checkpoint, people, tmp_path, load_tool, capsys):
    from promptsg.retrieval import GalleryIndex

    tool = load_tool('extract')
    index_file = tmp_path / 'gallery.idx'
    base = [str(TINY_CONFIG), str(checkpoint), '--no-progress', '--gallery-index', str(index_file)]
    feats = tool.main(base + [str(people)])
    assert 'flat' in capsys.readouterr().out
    index = GalleryIndex.load(index_file)
    assert len(index) == 6 and sorted(index.pids) == ['11', '11', '20', '20', '3', '3']
    assert index.dim == feats.shape[1]
    assert index.fingerprint == ReIDInferencer(TINY_CONFIG, checkpoint).fingerprint
    with pytest.raises(ConfigError, match='exists: pass --extend'):
        tool.main(base + [str(people)])
    more = tmp_path / 'more'
    (more / '42').mkdir(parents=True)
    for i in range(2):
        Image.fromarray(draw_person(6, 42, i, (96, 48))).save(more / '42' / f'{i}.png')
    tool.main(base + ['--extend', str(people), str(more)])  # people is already in it
    assert '2 images added (6 already in it), 8 in all' in capsys.readouterr().out
    extended = GalleryIndex.load(index_file)
    assert len(extended) == 8 and extended.pids[-2:] == ['42', '42']
    assert extended.paths[:6] == index.paths
    other = tmp_path / 'other.idx'
    with pytest.raises(ConfigError, match='KEY=INT'):
        tool.main(base[:3] + [str(people), '--gallery-index', str(other), '--index-options', 'nl'])
    with pytest.raises(ConfigError, match=r"no option\(s\) \['nlist'\]"):
        tool.main(
            base[:3] + [str(people), '--gallery-index', str(other), '--index-options', 'nlist=4']
        )
    with pytest.raises(ConfigError, match='--out.*--gallery-index'):
        tool.main(base[:3] + [str(people)])
    assert not other.exists()
    # an index of another model (different prompt => different fingerprint) is refused
    with pytest.raises(DataError, match='another model'):
        tool.main(base + ['--extend', '--prompt', 'composed', str(people)])
