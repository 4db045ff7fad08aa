"""Tiny cases whose expected scores are worked out by hand (in the comments)."""

import pytest
import torch

from promptsg.errors import ConfigError, DataError
from promptsg.evaluation.functional import cmc_map, feature_cmc_map, pairwise_distance

# Gallery pids; query 0 (pid 1) ranks them in index order, query 1 (pid 2) ranks them as
# g0 g1 g2 g4 g3 g5 (pids 1 2 1 3 2 1).
GALLERY_PIDS = [1, 2, 1, 2, 3, 1]
DIST = torch.tensor([[0.0, 1, 2, 3, 4, 5], [0.0, 1, 2, 4, 3, 5]])


def test_standard_ap_rank_k_minp():
    # q0: hits at ranks 1, 3, 6 -> precisions 1, 2/3, 1/2 -> AP = 13/18; INP = 3/6
    # q1: hits at ranks 2, 5    -> precisions 1/2, 2/5     -> AP = 0.45;  INP = 2/5
    r = cmc_map(DIST, [1, 2], GALLERY_PIDS, topk=(1, 2, 5), ap='standard')
    assert r['mAP'] == pytest.approx(100 * (13 / 18 + 0.45) / 2, abs=1e-12)
    assert r['mINP'] == pytest.approx(100 * (0.5 + 0.4) / 2, abs=1e-12)
    assert r['rank1'] == pytest.approx(50.0)
    assert r['rank2'] == pytest.approx(100.0)
    assert r['rank5'] == pytest.approx(100.0)
    assert r['num_valid_queries'] == 2


def test_trapezoid_ap():
    # previous precision = precision at the rank just before the hit, 1 before rank 1.
    # q0: (1+1)/2 + (1/2+2/3)/2 + (2/5+1/2)/2 = 1 + 7/12 + 9/20 = 61/30 -> AP = 61/90
    # q1: (0+1/2)/2 + (1/4+2/5)/2 = 0.25 + 0.325 = 0.575        -> AP = 0.2875
    r = cmc_map(DIST, [1, 2], GALLERY_PIDS, ap='trapezoid')
    assert r['mAP'] == pytest.approx(100 * (61 / 90 + 0.2875) / 2, abs=1e-12)
    assert r['mINP'] == pytest.approx(45.0, abs=1e-12)  # INP does not depend on the AP variant


def test_ties_are_broken_by_gallery_index():
    # distances [1, 1, 0]: stable order g2, g0, g1 -> pids 1, 0, 1 -> hits at ranks 1, 3
    r = cmc_map(torch.tensor([[1.0, 1.0, 0.0]]), [1], [0, 1, 1])
    assert r['mAP'] == pytest.approx(100 * (1 + 2 / 3) / 2, abs=1e-12)
    assert r['mINP'] == pytest.approx(100 * 2 / 3, abs=1e-12)


# Camera case. Gallery: g0 (pid 1, cam 0), g1 (pid 1, cam 1), g2 (pid 2, cam 1), g3 (pid 1, cam 0).
CAM_G_PIDS, CAM_G_CAMS = [1, 1, 2, 1], [0, 1, 1, 0]
# q0 (pid 1, cam 0) ranks g0 g2 g1 g3; q1 (pid 3) has no match; q2 (pid 2, cam 1) ranks g3 g2 g1 g0
CAM_DIST = torch.tensor([[0.0, 2, 1, 3], [0.0, 1, 2, 3], [3.0, 2, 1, 0]])
CAM_Q_PIDS = [1, 3, 2]


def test_camera_filtering_removes_same_pid_same_camera():
    # q0: g0 and g3 removed -> kept g2, g1 -> single hit at rank 2: AP 1/2, INP 1/2
    # q1: no pid-3 gallery image -> skipped; q2: its only match g2 has its camera -> skipped
    r = cmc_map(CAM_DIST, CAM_Q_PIDS, CAM_G_PIDS, [0, 0, 1], CAM_G_CAMS, topk=(1, 2))
    assert r['num_valid_queries'] == 1
    assert r['mAP'] == pytest.approx(50.0)
    assert r['mINP'] == pytest.approx(50.0)
    assert r['rank1'] == 0.0
    assert r['rank2'] == 100.0
    # trapezoid: precision before rank 2 is 0/1 -> (0 + 1/2)/2
    t = cmc_map(CAM_DIST, CAM_Q_PIDS, CAM_G_PIDS, [0, 0, 1], CAM_G_CAMS, ap='trapezoid')
    assert t['mAP'] == pytest.approx(25.0)


def test_without_camera_filtering():
    # q0: hits at ranks 1, 3, 4 -> AP (1 + 2/3 + 3/4)/3 = 29/36, INP 3/4
    # q2: hit at rank 2 -> AP 1/2, INP 1/2; q1 skipped
    expected = dict(mAP=100 * (29 / 36 + 0.5) / 2, mINP=100 * (0.75 + 0.5) / 2, rank1=50.0)
    for r in (
        cmc_map(CAM_DIST, CAM_Q_PIDS, CAM_G_PIDS, [0, 0, 1], CAM_G_CAMS, camera_filter=False),
        cmc_map(CAM_DIST, CAM_Q_PIDS, CAM_G_PIDS),  # cameras unknown
    ):
        assert r['num_valid_queries'] == 2
        for key, value in expected.items():
            assert r[key] == pytest.approx(value, abs=1e-12)


def test_unknown_camera_is_never_filtered():
    # q2's camid is -1: g2 stays a valid match at rank 2; q0 as in the filtered case
    r = cmc_map(CAM_DIST, CAM_Q_PIDS, CAM_G_PIDS, [0, 0, -1], CAM_G_CAMS)
    assert r['num_valid_queries'] == 2
    assert r['mAP'] == pytest.approx(50.0)
    # an unknown gallery camera is not filtered either: g0 and g3 (cam -1) become hits of q0
    r = cmc_map(CAM_DIST[:1], [1], CAM_G_PIDS, [0], [-1, 1, 1, -1])
    assert r['mAP'] == pytest.approx(100 * 29 / 36, abs=1e-12)


def test_no_valid_query_and_bad_options():
    with pytest.raises(DataError, match='no query'):
        cmc_map(torch.zeros(1, 2), [5], [1, 2])
    with pytest.raises(DataError, match='distmat'):
        cmc_map(torch.zeros(0, 2), [], [1, 2])
    with pytest.raises(DataError, match='g_pids'):
        cmc_map(torch.zeros(1, 2), [1], [1, 2, 3])
    with pytest.raises(ConfigError, match="ap='area'.*standard, trapezoid"):
        cmc_map(DIST, [1, 2], GALLERY_PIDS, ap='area')
    with pytest.raises(ConfigError, match="metric='l1'.*cosine, euclidean"):
        pairwise_distance(torch.zeros(1, 2), torch.zeros(1, 2), 'l1')
    with pytest.raises(ConfigError, match='chunk_size'):
        cmc_map(DIST, [1, 2], GALLERY_PIDS, chunk_size=0)
    with pytest.raises(ConfigError, match='topk'):
        cmc_map(DIST, [1, 2], GALLERY_PIDS, topk=(0,))


def test_pairwise_distance_values():
    q = torch.tensor([[3.0, 4.0]])
    g = torch.tensor([[3.0, 4.0], [4.0, -3.0], [-6.0, -8.0], [0.0, 0.0]])
    # cosines 1, 0, -1, 0 (zero vector) -> distances 0, 1, 2, 1
    cos = pairwise_distance(q, g, 'cosine')
    assert torch.allclose(cos, torch.tensor([[0.0, 1.0, 2.0, 1.0]]), atol=1e-6)
    # Euclidean: 0, sqrt(1 + 49) = sqrt(50), sqrt(81 + 144) = 15, 5
    euc = pairwise_distance(q, g, 'euclidean')
    assert torch.allclose(euc, torch.tensor([[0.0, 50**0.5, 15.0, 5.0]]), atol=1e-5)


def test_feature_path_matches_distance_path():
    # features on the unit circle: cosine distance ranks by angle
    angles = torch.tensor([0.0, 0.1, 0.5, 1.0, 2.2])
    g = torch.stack([angles.cos(), angles.sin()], 1)
    q = g[[0, 3]] * 2.0  # scale must not matter for cosine
    r = feature_cmc_map(q, g, [7, 8], [7, 8, 7, 8, 9], chunk_size=1)
    # q0 (angle 0): order by angle 0, .1, .5, 1, 2.2 -> pids 7 8 7 8 9 -> hits at 1, 3
    # q1 (angle 1): order 1, .5, .1, 0, 2.2 -> pids 8 7 8 7 9 -> hits at 1, 3; INP 2/3 each
    assert r['mAP'] == pytest.approx(100 * (1 + 2 / 3) / 2, abs=1e-9)
    assert r['mINP'] == pytest.approx(100 * 2 / 3, abs=1e-9)
    euc = feature_cmc_map(q / 2.0, g, [7, 8], [7, 8, 7, 8, 9], metric='euclidean')
    assert euc['mAP'] == pytest.approx(r['mAP'], abs=1e-9)


def test_negative_distances_and_signed_zero():
    # order: -2.5 (g1, pid 0), -1.0 (g4, pid 1), then -0.0 and 0.0 tie -> g0 (pid 1) before
    # g3 (pid 0), then 1e-30 (g2, pid 1). Query pid 1: hits at ranks 2, 3, 5
    dist = torch.tensor([[-0.0, -2.5, 1e-30, 0.0, -1.0]], dtype=torch.float64)
    expected = 100 * (1 / 2 + 2 / 3 + 3 / 5) / 3
    assert cmc_map(dist, [1], [1, 0, 1, 0, 1])['mAP'] == pytest.approx(expected, abs=1e-12)
    assert cmc_map(dist.float(), [1], [1, 0, 1, 0, 1])['mAP'] == pytest.approx(expected, abs=1e-9)
    # +0.0 now comes first in index order (g0), -0.0 later (g3): the tie still goes by index;
    # pid 0 matches g1 (rank 1) and g3 (rank 4): AP (1 + 2/4)/2
    r = cmc_map(torch.tensor([[0.0, -2.5, 1e-30, -0.0, -1.0]]), [0], [1, 0, 1, 0, 1])
    assert r['mAP'] == pytest.approx(100 * (1 + 2 / 4) / 2, abs=1e-9)
