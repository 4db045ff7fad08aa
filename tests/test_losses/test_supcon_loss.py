import math

import pytest
import torch

from promptsg.errors import ConfigError
from promptsg.losses import SupConLoss
from promptsg.registry import LOSSES


def reference_direction(anchors, candidates, labels, tau):
    """Loop: mean over anchors of -mean over positives of log softmax over candidates."""

    def unit(r):
        n = math.sqrt(sum(x * x for x in r))
        return [x / n for x in r]

    anchors = [unit(r) for r in anchors.tolist()]
    candidates = [unit(r) for r in candidates.tolist()]
    labels = labels.tolist()
    total = 0.0
    for i, a in enumerate(anchors):
        sims = [sum(x * y for x, y in zip(a, c)) / tau for c in candidates]
        log_z = math.log(sum(math.exp(s) for s in sims))
        pos = [sims[j] - log_z for j in range(len(candidates)) if labels[j] == labels[i]]
        total += -sum(pos) / len(pos)
    return total / len(anchors)


# Hand example, temperature 1, pids (0, 0, 1):
#   images v1 = (1, 0), v2 = (0.6, 0.8), v3 = (0, 1); texts l1 = l2 = (1, 0), l3 = (0, 1)
#   cos rows (images):  v1: [1, 1, 0]   v2: [0.6, 0.6, 0.8]   v3: [0, 0, 1]
#   i2t = ( [ln(2e + 1) - 1] + [ln(2e^0.6 + e^0.8) - 0.6] + [ln(e + 2) - 1] ) / 3 = 0.8610855
#   cos rows (texts):   l1 = l2: [1, 0.6, 0]   l3: [0, 0.8, 1]
#   t2i = ( 2[ln(e + e^0.6 + 1) - 0.8] + [ln(1 + e^0.8 + e) - 1] ) / 3          = 0.8688287
E = math.e
HAND_I2T = (
    (math.log(2 * E + 1) - 1)
    + (math.log(2 * math.exp(0.6) + math.exp(0.8)) - 0.6)
    + (math.log(E + 2) - 1)
) / 3
HAND_T2I = (2 * (math.log(E + math.exp(0.6) + 1) - 0.8) + (math.log(1 + math.exp(0.8) + E) - 1)) / 3
HAND_IMG = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
HAND_TEXT = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
HAND_PIDS = torch.tensor([0, 0, 1])


def test_hand_example_numbers():
    assert abs(HAND_I2T - 0.8610855) < 1e-7
    assert abs(HAND_T2I - 0.8688287) < 1e-7


@pytest.mark.parametrize(
    'symmetric,combine,expected',
    [
        (False, 'sum', HAND_I2T),
        (True, 'sum', HAND_I2T + HAND_T2I),
        (True, 'mean', (HAND_I2T + HAND_T2I) / 2),
    ],
)
def test_hand_example(symmetric, combine, expected):
    # features scaled by arbitrary norms: the loss normalises them itself
    img, text = HAND_IMG * torch.tensor([[2.0], [1.0], [0.5]]), HAND_TEXT * 3.0
    out = SupConLoss(temperature=1.0, symmetric=symmetric, combine=combine)(img, text, HAND_PIDS)
    assert out['loss_supcon'].item() == pytest.approx(expected, abs=1e-6)
    assert out['supcon_i2t'].item() == pytest.approx(HAND_I2T, abs=1e-6)
    assert ('supcon_t2i' in out) == symmetric
    assert all('loss' not in k for k in out if k != 'loss_supcon')


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('tau', [0.07, 0.5])
def test_matches_loop_reference(seed, tau):
    g = torch.Generator().manual_seed(seed)
    img, text = torch.randn(10, 6, generator=g), torch.randn(10, 6, generator=g)
    pids = torch.randint(0, 4, (10,), generator=g)
    i2t = reference_direction(img, text, pids, tau)
    t2i = reference_direction(text, img, pids, tau)
    one_way = SupConLoss(temperature=tau, symmetric=False)(img, text, pids)['loss_supcon']
    both = SupConLoss(temperature=tau, loss_weight=0.5)(img, text, pids)['loss_supcon']
    assert one_way.item() == pytest.approx(i2t, rel=1e-5)
    assert both.item() == pytest.approx(0.5 * (i2t + t2i), rel=1e-5)


def test_gradient_reaches_text_features():
    img = torch.randn(6, 4, requires_grad=True)
    text = torch.randn(6, 4, requires_grad=True)
    loss = LOSSES.build(dict(type='SupConLoss'))(img, text, torch.tensor([0, 0, 1, 1, 2, 2]))
    loss['loss_supcon'].backward()
    assert text.grad.abs().sum() > 0 and img.grad.abs().sum() > 0


@pytest.mark.parametrize(
    'kwargs', [dict(temperature=0.0), dict(temperature=-0.1), dict(combine='max')]
)
def test_bad_config(kwargs):
    with pytest.raises(ConfigError):
        SupConLoss(**kwargs)


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError):
        SupConLoss()(torch.randn(4, 3), torch.randn(3, 3), torch.arange(4))
