import pytest
import torch

from promptsg.errors import ConfigError
from promptsg.losses import CenterLoss
from promptsg.registry import LOSSES


def reference_center(feats, labels, centers):
    """mean over samples of ||f - c_y||^2 / 2."""
    total = 0.0
    for f, y in zip(feats.tolist(), labels.tolist()):
        total += sum((a - b) ** 2 for a, b in zip(f, centers[y])) / 2
    return total / len(labels)


def test_hand_value():
    loss = CenterLoss(num_classes=2, feat_dim=2, loss_weight=1.0)
    with torch.no_grad():
        loss.centers.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    # (1 / 2 + 4 / 2) / 2 = 1.25
    out = loss(torch.tensor([[1.0, 0.0], [1.0, 3.0]]), torch.tensor([0, 1]))
    assert out['loss_center'].item() == pytest.approx(1.25)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_matches_loop_reference_and_weight(seed):
    torch.manual_seed(seed)
    loss = LOSSES.build(dict(type='CenterLoss', num_classes=5, feat_dim=4))
    feats, labels = torch.randn(9, 4), torch.randint(0, 5, (9,))
    got = loss(feats, labels)['loss_center'].item()
    assert loss.loss_weight == 5e-4
    assert got == pytest.approx(5e-4 * reference_center(feats, labels, loss.centers.tolist()))


def test_centers_are_trained_by_the_optimiser():
    torch.manual_seed(0)
    loss = CenterLoss(num_classes=3, feat_dim=4, loss_weight=1.0)
    assert any(p is loss.centers for p in loss.parameters())
    feats, labels = torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])
    opt = torch.optim.SGD(loss.parameters(), lr=0.5)
    before = loss(feats, labels)['loss_center'].item()
    for _ in range(5):
        opt.zero_grad()
        loss(feats, labels)['loss_center'].backward()
        opt.step()
    assert loss(feats, labels)['loss_center'].item() < 0.5 * before


@pytest.mark.parametrize(
    'kwargs', [dict(num_classes=0, feat_dim=4), dict(num_classes=3, feat_dim=0)]
)
def test_bad_config(kwargs):
    with pytest.raises(ConfigError):
        CenterLoss(**kwargs)
