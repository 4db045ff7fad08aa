import math

import pytest
import torch

from promptsg.errors import ConfigError
from promptsg.losses import CrossEntropyLoss
from promptsg.registry import LOSSES


def reference_ce(logits, labels, eps):
    """-(1 - eps) log p_y - eps/K sum_k log p_k, averaged over samples."""
    total = 0.0
    for row, y in zip(logits.tolist(), labels.tolist()):
        log_z = math.log(sum(math.exp(v) for v in row))
        log_p = [v - log_z for v in row]
        total += -(1 - eps) * log_p[y] - eps / len(row) * sum(log_p)
    return total / len(labels)


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('eps', [0.0, 0.1, 0.3])
def test_matches_manual_formula(seed, eps):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(8, 5, generator=g) * 3
    labels = torch.randint(0, 5, (8,), generator=g)
    got = CrossEntropyLoss(label_smoothing=eps)(logits, labels)['loss_ce'].item()
    assert got == pytest.approx(reference_ce(logits, labels, eps), rel=1e-5)


def test_hand_value():
    # p = (1/4, 3/4), y = 1, eps = 0.1: -0.9 ln 0.75 - 0.05 (ln 0.25 + ln 0.75) = 0.3426127
    logits = torch.tensor([[0.0, math.log(3.0)]])
    loss = LOSSES.build(dict(type='CrossEntropyLoss'))(logits, torch.tensor([1]))
    assert loss['loss_ce'].item() == pytest.approx(0.3426127, abs=1e-6)


def test_weight_and_name():
    logits, labels = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    base = CrossEntropyLoss()(logits, labels)['loss_ce']
    out = CrossEntropyLoss(loss_weight=0.25, loss_name='loss_id')(logits, labels)
    assert list(out) == ['loss_id']
    assert out['loss_id'].item() == pytest.approx(0.25 * base.item())


@pytest.mark.parametrize(
    'kwargs',
    [
        dict(label_smoothing=1.0),
        dict(label_smoothing=-0.1),
        dict(loss_weight=-1.0),
        dict(loss_weight=float('nan')),
        dict(loss_name='ce'),
    ],
)
def test_bad_config(kwargs):
    with pytest.raises(ConfigError):
        CrossEntropyLoss(**kwargs)
