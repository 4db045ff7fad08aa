"""GalleryIndex: search against brute force, camera rule, save/load/extend, and bad input."""

import json
import zipfile

import numpy as np
import pytest

from promptsg.apis.retrieval import topk_search
from promptsg.errors import ConfigError, DataError
from promptsg.retrieval import GalleryIndex, import_faiss
from promptsg.retrieval import backends as backends_module

HAS_FAISS = import_faiss() is not None
needs_faiss = pytest.mark.skipif(not HAS_FAISS, reason='faiss is not installed')
FLAT_BACKENDS = ['torch', pytest.param('faiss', marks=needs_faiss)]


def unit(rng, num, dim):
    feats = rng.normal(size=(num, dim)).astype(np.float32)
    return feats / np.linalg.norm(feats, axis=1, keepdims=True)


def gallery(num=300, dim=16, seed=0, ids=30):
    """Clustered unit features with pids (strings) and two cameras."""
    rng = np.random.default_rng(seed)
    pid = rng.integers(0, ids, num)
    centres = unit(rng, ids, dim)
    feats = centres[pid] + 0.3 * rng.normal(size=(num, dim)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    paths = [f'/g/{i:04d}.jpg' for i in range(num)]
    return feats, paths, [str(p) for p in pid], [i % 2 for i in range(num)]


@pytest.mark.parametrize('backend', FLAT_BACKENDS)
def test_flat_search_equals_brute_force(backend):
    feats, paths, pids, cams = gallery()
    query = unit(np.random.default_rng(1), 20, 16)
    index = GalleryIndex.build(feats, paths, pids, cams, 'flat', backend=backend)
    assert index.backend_name == backend
    hits = index.search(query, topk=7)
    want_rows, want_scores = topk_search(query, feats, 7)
    np.testing.assert_array_equal(hits.rows, want_rows)
    np.testing.assert_allclose(hits.scores, want_scores, atol=1e-5)


@pytest.mark.parametrize('backend', FLAT_BACKENDS)
def test_camera_rule_and_self_exclusion_equal_a_masked_brute_force(backend):
    feats, paths, pids, cams = gallery()
    index = GalleryIndex.build(feats, paths, pids, cams, backend=backend)
    q = np.arange(0, 300, 15)
    hits = index.search(
        feats[q], 10, [pids[i] for i in q], [cams[i] for i in q], [paths[i] for i in q]
    )
    g_pids, g_cams = np.array(pids), np.array(cams)
    mask = (g_pids[None] == g_pids[q][:, None]) & (g_cams[None] == g_cams[q][:, None])
    mask[np.arange(len(q)), q] = True
    want_rows, _ = topk_search(feats[q], feats, 10, mask)
    np.testing.assert_array_equal(hits.rows, want_rows)
    np.testing.assert_array_equal(hits.candidates, 300 - mask.sum(1))
    # unknown cameras or camera_filter=False: only the query's own file goes
    loose = index.search(feats[q], 10, [pids[i] for i in q], [-1] * len(q), [paths[i] for i in q])
    assert not (loose.rows == q[:, None]).any()
    assert (loose.candidates == 299).all()


def test_topk_larger_than_the_gallery_pads_with_minus_one():
    feats, paths, pids, cams = gallery(num=15)
    hits = GalleryIndex.build(feats, paths, backend='torch').search(feats[:2], 100)
    assert hits.rows.shape == (2, 100)
    assert ((hits.rows >= 0).sum(1) == 15).all() and np.isneginf(hits.scores[:, 15:]).all()


@pytest.mark.parametrize('backend', FLAT_BACKENDS)
def test_save_load_extend_round_trip(tmp_path, backend):
    feats, paths, pids, cams = gallery()
    whole = GalleryIndex.build(feats, paths, pids, cams, backend=backend, fingerprint='abc-d16')
    part = GalleryIndex.build(feats[:100], paths[:100], pids[:100], cams[:100], backend=backend)
    part.save(tmp_path / 'g.idx')
    loaded = GalleryIndex.load(tmp_path / 'g.idx', backend=backend)
    loaded.add(feats[100:], paths[100:], pids[100:], cams[100:])
    loaded.save(tmp_path / 'g.idx')
    again = GalleryIndex.load(tmp_path / 'g.idx', backend='torch')  # flat files need no faiss
    query = unit(np.random.default_rng(2), 9, 16)
    np.testing.assert_array_equal(again.search(query, 5).rows, whole.search(query, 5).rows)
    assert again.paths == paths and again.pids == pids and again.camids == cams
    assert len(again) == 300


@needs_faiss
@pytest.mark.parametrize(
    'cfg,min_recall',
    [
        (dict(type='ivf', nlist=8, nprobe=8), 1.0),  # every cell searched: exact
        (dict(type='ivf', nlist=8, nprobe=8, train_size=400), 1.0),  # cells from a sample
        (dict(type='hnsw', m=16, ef_search=128), 0.95),
        (dict(type='ivfpq', nlist=4, nprobe=4, pq_m=8, pq_bits=6), 0.5),
    ],
)
def test_approximate_indexes_recall_and_round_trip(tmp_path, cfg, min_recall):
    feats, paths, pids, cams = gallery(num=2000, dim=32, ids=100)
    index = GalleryIndex.build(feats, paths, pids, cams, cfg)
    query = feats[::40] + 0.05 * unit(np.random.default_rng(3), 50, 32)
    exact, _ = topk_search(query, feats, 10)
    rows = index.search(query, 10).rows
    recall = np.mean([len(set(r) & set(e)) / 10 for r, e in zip(rows, exact)])
    assert recall >= min_recall
    index.save(tmp_path / 'a.idx')
    loaded = GalleryIndex.load(tmp_path / 'a.idx')
    assert loaded.cfg == index.cfg
    np.testing.assert_array_equal(loaded.search(query, 10).rows, rows)
    loaded.add(feats[:5], [f'/new/{i}.jpg' for i in range(5)])
    assert len(loaded) == 2005 and loaded.search(feats[:1], 3).rows.shape == (1, 3)


def test_failed_save_leaves_the_previous_index_intact(tmp_path, monkeypatch):
    feats, paths, pids, cams = gallery()
    path = tmp_path / 'g.idx'
    GalleryIndex.build(feats[:50], paths[:50], backend='torch').save(path)
    before = path.read_bytes()
    bigger = GalleryIndex.build(feats, paths, backend='torch')

    def broken(features):
        raise OSError('disk full (injected)')

    monkeypatch.setattr(np, 'save', lambda member, array: broken(array))
    with pytest.raises(OSError, match='injected'):
        bigger.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ['g.idx']  # no temporary file left
    monkeypatch.undo()
    assert len(GalleryIndex.load(path)) == 50


def test_bad_input_is_one_clear_line(tmp_path):
    feats, paths, pids, cams = gallery()
    index = GalleryIndex.build(feats, paths, pids, cams, backend='torch', fingerprint='m1-d16')
    with pytest.raises(DataError, match='query features are 8-d but the index holds 16-d'):
        index.search(feats[:3, :8])
    with pytest.raises(DataError, match='built with another model'):
        index.search(feats[:3], fingerprint='m2-d16')
    with pytest.raises(DataError, match='index features are 8-d'):
        index.add(feats[:3, :8], paths[:3])
    with pytest.raises(DataError, match='3 features but 2 paths'):
        index.add(feats[:3], paths[:2])
    with pytest.raises(ConfigError, match="index type 'lsh' is not valid; choose one of: flat"):
        GalleryIndex(16, 'lsh')
    with pytest.raises(ConfigError, match=r"no option\(s\) \['nprobe'\]"):
        GalleryIndex(16, dict(type='hnsw', nprobe=3))
    path = tmp_path / 'g.idx'
    index.save(path)
    data = path.read_bytes()

    corrupted = tmp_path / 'corrupted.idx'
    middle = len(data) // 2
    corrupted.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64]))
    with pytest.raises(DataError, match='corrupted'):
        GalleryIndex.load(corrupted)
    truncated = tmp_path / 'truncated.idx'
    truncated.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match='corrupted'):
        GalleryIndex.load(truncated)
    with pytest.raises(DataError, match='not found'):
        GalleryIndex.load(tmp_path / 'missing.idx')

    out_of_step = tmp_path / 'step.idx'
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out_of_step, 'w') as dst:
        for name in src.namelist():
            content = src.read(name)
            if name == 'meta.json':
                meta = json.loads(content)
                meta['count'] = 299
                content = json.dumps(meta)
            if name == 'entries.json':
                entries = json.loads(content)
                entries = {k: v[:299] for k, v in entries.items()}
                content = json.dumps(entries)
            dst.writestr(name, content)
    with pytest.raises(DataError, match='metadata and index out of step'):
        GalleryIndex.load(out_of_step)


def test_without_faiss_flat_falls_back_and_approximate_types_name_the_install(monkeypatch):
    monkeypatch.setattr(backends_module, 'import_faiss', lambda: None)
    feats, paths, _, _ = gallery(num=40)
    index = GalleryIndex.build(feats, paths)
    assert index.backend_name == 'torch'
    np.testing.assert_array_equal(
        index.search(feats[:4], 3).rows, topk_search(feats[:4], feats, 3)[0]
    )
    for kind in ('ivf', 'hnsw', 'ivfpq'):
        with pytest.raises(ConfigError, match='pip install faiss-cpu'):
            GalleryIndex(16, kind)
    with pytest.raises(ConfigError, match='pip install faiss-cpu'):
        GalleryIndex(16, 'flat', backend='faiss')
    with pytest.raises(ConfigError, match='exact'):
        GalleryIndex(16, 'hnsw', backend='torch')
