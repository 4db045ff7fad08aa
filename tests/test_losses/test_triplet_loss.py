import math

import pytest
import torch

from promptsg.errors import ConfigError
from promptsg.losses import TripletLoss
from promptsg.registry import LOSSES


def reference_triplet(feats, labels, margin, soft=False, normalize=False):
    """Loop over anchors: hardest positive / negative by Euclidean distance."""
    rows, labels = feats.tolist(), labels.tolist()
    if normalize:
        rows = [[v / math.sqrt(sum(x * x for x in r)) for v in r] for r in rows]

    def dist(a, b):
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))

    terms = []
    for i, anchor in enumerate(rows):
        d_pos = [dist(anchor, r) for j, r in enumerate(rows) if j != i and labels[j] == labels[i]]
        d_neg = [dist(anchor, r) for j, r in enumerate(rows) if labels[j] != labels[i]]
        if not d_pos or not d_neg:
            continue
        gap = max(d_pos) - min(d_neg)
        terms.append(math.log1p(math.exp(gap)) if soft else max(0.0, gap + margin))
    return sum(terms) / len(terms) if terms else 0.0


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
@pytest.mark.parametrize(
    'soft,normalize,margin', [(False, False, 0.3), (True, False, 0.3), (False, True, 0.5)]
)
def test_matches_loop_reference(seed, soft, normalize, margin):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(12, 5, generator=g)
    labels = torch.randint(0, 5, (12,), generator=g)  # some anchors lack a positive
    loss = TripletLoss(margin=margin, soft_margin=soft, normalize_feature=normalize)
    got = loss(feats, labels)['loss_triplet'].item()
    assert got == pytest.approx(reference_triplet(feats, labels, margin, soft, normalize), abs=1e-5)


def test_hand_computed_anchors_without_positive_are_excluded():
    # 1-D points 0, 2, 3, 7 with pids 0, 0, 1, 2: only anchors 0 and 1 have a positive.
    # anchor 0: d_ap = 2, d_an = 3 -> max(0, 2 - 3 + 0.3) = 0
    # anchor 1: d_ap = 2, d_an = 1 -> 2 - 1 + 0.3 = 1.3        mean = 0.65
    feats = torch.tensor([[0.0], [2.0], [3.0], [7.0]])
    labels = torch.tensor([0, 0, 1, 2])
    assert TripletLoss(margin=0.3)(feats, labels)['loss_triplet'].item() == pytest.approx(0.65)
    # soft margin: (softplus(-1) + softplus(1)) / 2 = (0.313262 + 1.313262) / 2
    soft = TripletLoss(soft_margin=True)(feats, labels)['loss_triplet'].item()
    assert soft == pytest.approx(0.8132617, abs=1e-6)


@pytest.mark.parametrize('labels', [[0, 1, 2, 3], [5, 5, 5, 5]], ids=['no_pos', 'no_neg'])
def test_no_valid_anchor_gives_zero_on_the_graph(labels):
    feats = torch.randn(4, 3, requires_grad=True)
    loss = TripletLoss()(feats, torch.tensor(labels))['loss_triplet']
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(feats.grad, torch.zeros_like(feats))


def test_finite_gradient_with_duplicate_features_and_weight_and_name():
    feats = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0], [0.5, 0.1]], requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    loss = LOSSES.build(dict(type='TripletLoss', loss_weight=2.0, loss_name='loss_tri_mim'))
    out = loss(feats, labels)
    assert list(out) == ['loss_tri_mim']
    plain = TripletLoss()(feats, labels)['loss_triplet']
    assert out['loss_tri_mim'].item() == pytest.approx(2 * plain.item())
    out['loss_tri_mim'].backward()
    assert torch.isfinite(feats.grad).all()


@pytest.mark.parametrize(
    'kwargs', [dict(margin=-0.1), dict(loss_weight=-1.0), dict(loss_name='triplet')]
)
def test_bad_config(kwargs):
    with pytest.raises(ConfigError):
        TripletLoss(**kwargs)
