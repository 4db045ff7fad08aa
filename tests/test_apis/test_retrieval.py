"""Top-k gallery search and the result grid (size, border colours)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from promptsg.apis import draw_result_grid, grid_size, search_records, topk_search
from promptsg.apis.grid import MATCH_COLOUR, NO_MATCH_COLOUR, QUERY_COLOUR, UNKNOWN_COLOUR
from promptsg.apis.images import ImageRecord
from promptsg.apis.retrieval import MATCH, NO_MATCH, UNKNOWN
from promptsg.errors import ConfigError, DataError


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_topk_equals_a_full_sort_of_cosine_similarity():
    rng = np.random.default_rng(0)
    q, g = _unit(rng.normal(size=(5, 8))), _unit(rng.normal(size=(9, 8)))
    indices, scores = topk_search(q, g, topk=4)
    sim = q @ g.T
    for i in range(5):
        best = sorted(range(9), key=lambda j: -sim[i, j])[:4]
        assert indices[i].tolist() == best
        np.testing.assert_allclose(scores[i], sim[i, best], rtol=1e-6)
    assert topk_search(q, g, topk=50)[0].shape == (5, 9)


def test_excluded_images_are_never_returned():
    rng = np.random.default_rng(1)
    q, g = _unit(rng.normal(size=(3, 4))), _unit(rng.normal(size=(3, 4)))
    exclude = np.eye(3, dtype=bool)
    exclude[0] = True  # query 0 has no candidate at all
    indices, scores = topk_search(q, g, topk=3, exclude=exclude)
    assert (indices[0] == -1).all() and np.isneginf(scores[0]).all()
    for i in (1, 2):
        assert i not in indices[i, :2] and indices[i, 2] == -1


def test_bad_search_arguments():
    with pytest.raises(ConfigError, match='topk'):
        topk_search(np.ones((1, 2)), np.ones((1, 2)), topk=0)
    with pytest.raises(DataError, match='4-d'):
        topk_search(np.ones((1, 2)), np.ones((1, 4)), topk=1)


def test_search_records_marks_matches_and_skips_the_query_itself(tmp_path):
    q = [ImageRecord('/a/1.png', '1'), ImageRecord('/a/2.png', None)]
    g = [ImageRecord('/a/1.png', '1'), ImageRecord('/b/3.png', '1'), ImageRecord('/b/4.png', '2')]
    feats_q = _unit(np.array([[1.0, 0.0], [0.0, 1.0]]))
    feats_g = _unit(np.array([[1.0, 0.0], [0.9, 0.1], [0.8, 0.3]]))
    result = search_records(q, g, feats_q, feats_g, topk=3)
    assert result.indices[0].tolist() == [1, 2, -1]
    assert result.matches[0].tolist() == [MATCH, NO_MATCH, UNKNOWN]
    assert (result.matches[1] == UNKNOWN).all()
    kept = search_records(q, g, feats_q, feats_g, topk=1, exclude_self=False)
    assert kept.indices[0, 0] == 0


def test_grid_has_the_documented_size_and_border_colours(tmp_path):
    paths = []
    for i, colour in enumerate([(200, 200, 0), (0, 200, 200), (200, 0, 200), (90, 90, 90)]):
        paths.append(str(tmp_path / f'{i}.png'))
        Image.new('RGB', (30, 60), colour).save(paths[-1])
    query = [ImageRecord(paths[0], '1'), ImageRecord(paths[1], None)]
    gallery = [ImageRecord(paths[2], '1'), ImageRecord(paths[3], '2')]
    result = search_records(
        query,
        gallery,
        _unit(np.array([[1.0, 0.0], [0.0, 1.0]])),
        _unit(np.array([[1.0, 0.1], [0.2, 1.0]])),
        topk=2,
    )
    grid = draw_result_grid(query, gallery, result, thumb_size=(40, 20), border=3, gap=5)
    # gap + (k + 1) * (W + 2 * border + gap), gap + rows * (H + 2 * border + caption + gap)
    assert grid.size == (5 + 3 * (20 + 6 + 5), 5 + 2 * (40 + 6 + 14 + 5)) == (98, 135)
    assert grid.size == grid_size(2, 2, (40, 20), border=3, gap=5)
    cell_w, cell_h = 20 + 6 + 5, 40 + 6 + 14 + 5

    def border_pixel(row, col):
        return grid.getpixel((5 + col * cell_w + 1, 5 + row * cell_h + 1))

    assert border_pixel(0, 0) == QUERY_COLOUR
    assert border_pixel(0, 1) == MATCH_COLOUR and border_pixel(0, 2) == NO_MATCH_COLOUR
    assert border_pixel(1, 1) == UNKNOWN_COLOUR == border_pixel(1, 2)
    centre = grid.getpixel((5 + cell_w + 3 + 10, 5 + 3 + 20))
    assert centre == (200, 0, 200)  # gallery image 0 is query 0's best match
    assert draw_result_grid(query, gallery, result, max_rows=1).size == grid_size(1, 2)


def test_camera_rule_matches_the_metric_and_counts_valid_queries():
    # pid 1 query on camera 0: its camera-0 twin is ignored, the camera-1 image counts
    q = [ImageRecord('/q/0001_c1_a.png', '1', 0), ImageRecord('/q/0002_c1_b.png', '2', 0)]
    g = [
        ImageRecord('/g/0001_c1_x.png', '1', 0),
        ImageRecord('/g/0001_c2_y.png', '1', 1),
        ImageRecord('/g/0002_c1_z.png', '2', 0),
        ImageRecord('/g/0003_c2_w.png', '3', 1),
    ]
    feats_q = _unit(np.array([[1.0, 0.0], [0.0, 1.0]]))
    feats_g = _unit(np.array([[1.0, 0.01], [0.5, 0.5], [0.1, 1.0], [0.9, 0.2]]))
    result = search_records(q, g, feats_q, feats_g, topk=4)
    assert result.indices[0].tolist() == [3, 1, 2, -1]  # row 0 (same pid and camera) skipped
    assert result.has_match.tolist() == [True, False]  # pid 2's only image is on its camera
    assert 'top-1 correct: 0/1 queries' in result.top1_summary()
    assert 'pid and camera ignored, as the ReID metric' in result.rule
    loose = search_records(q, g, feats_q, feats_g, topk=4, camera_filter=False)
    assert loose.indices[0, 0] == 0 and loose.has_match.tolist() == [True, True]
    assert 'camera filter off' in loose.top1_summary()


def test_inferencer_searches_a_saved_index(
    tiny_config, tiny_checkpoint, identity_folders, tmp_path
):
    from promptsg.apis import ReIDInferencer
    from promptsg.apis.images import collect_images
    from promptsg.retrieval import GalleryIndex

    inferencer = ReIDInferencer(tiny_config, tiny_checkpoint)
    records = collect_images(identity_folders)
    feats = inferencer([r.path for r in records], progress=False)
    index = GalleryIndex.build(
        feats, [r.path for r in records], [r.pid for r in records],
        fingerprint=inferencer.fingerprint,
    )  # fmt: skip
    index.save(tmp_path / 'g.idx')
    result = inferencer.search(
        str(identity_folders), str(tmp_path / 'g.idx'), topk=3, progress=False
    )
    want = search_records(records, records, feats, feats, topk=3)
    np.testing.assert_array_equal(result.indices, want.indices)
    assert not (result.indices == np.arange(len(records))[:, None]).any()  # own file excluded
    arrays = inferencer.search(np.zeros((2, 32, 16, 3), np.uint8), index, topk=2, progress=False)
    assert arrays.indices.shape == (2, 2) and (arrays.matches == UNKNOWN).all()
    other = ReIDInferencer(tiny_config, tiny_checkpoint, prompt='composed')
    with pytest.raises(DataError, match='another model'):
        other.search(str(identity_folders), index, progress=False)
