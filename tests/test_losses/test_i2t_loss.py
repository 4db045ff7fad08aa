"""CLIP-ReID's image↔text losses against a plain loop and hand-computed values."""

import math

import pytest
import torch

from promptsg.errors import ConfigError
from promptsg.losses import ImageTextContrastiveLoss, ImageToTextCELoss
from promptsg.registry import LOSSES


def loop_direction(anchors, candidates, a_pids, c_pids, tau, normalize=False):
    """Mean over anchors of −mean over same-pid candidates of log softmax over candidates."""

    def unit(r):
        n = math.sqrt(sum(x * x for x in r))
        return [x / n for x in r]

    anchors, candidates = anchors.tolist(), candidates.tolist()
    if normalize:
        anchors, candidates = [unit(r) for r in anchors], [unit(r) for r in candidates]
    total = 0.0
    for a, pa in zip(anchors, a_pids.tolist()):
        sims = [sum(x * y for x, y in zip(a, c)) / tau for c in candidates]
        log_z = math.log(sum(math.exp(s) for s in sims))
        pos = [s - log_z for s, pc in zip(sims, c_pids.tolist()) if pc == pa]
        total += -sum(pos) / len(pos)
    return total / len(anchors)


def loop_ce(img, bank, pids, eps, tau=1.0):
    """Label-smoothed cross-entropy of v·Lᵀ/τ, written out per image."""
    total, classes = 0.0, len(bank)
    for v, y in zip(img.tolist(), pids.tolist()):
        logits = [sum(a * b for a, b in zip(v, t)) / tau for t in bank.tolist()]
        log_z = math.log(sum(math.exp(s) for s in logits))
        log_p = [s - log_z for s in logits]
        total += -(1 - eps) * log_p[y] - eps / classes * sum(log_p)
    return total / len(img)


def test_contrastive_hand_value():
    # images (1,0), (0,1); texts (1,0), (0,1); pids (0, 1); raw features, τ = 1:
    # every row is softmax([1, 0]) at its own index: −log(e/(e+1)) = log(1 + 1/e); i2t = t2i.
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    out = ImageTextContrastiveLoss()(img, img.clone(), torch.tensor([0, 1]))
    hand = math.log(1 + 1 / math.e)
    assert out['i2t_t2i_i2t'].item() == pytest.approx(hand, abs=1e-6)
    assert out['loss_i2t_t2i'].item() == pytest.approx(2 * hand, abs=1e-6)


@pytest.mark.parametrize('normalize,tau', [(False, 1.0), (True, 0.07), (False, 0.5)])
def test_contrastive_equals_loop(normalize, tau):
    g = torch.Generator().manual_seed(0)
    img, text = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    pids = torch.tensor([3, 3, 1, 1, 7, 7, 7, 0])
    loss = ImageTextContrastiveLoss(temperature=tau, normalize=normalize, loss_weight=0.5)
    out = loss(img, text, pids)
    i2t = loop_direction(img, text, pids, pids, tau, normalize)
    t2i = loop_direction(text, img, pids, pids, tau, normalize)
    assert out['i2t_t2i_i2t'].item() == pytest.approx(i2t, rel=1e-5)
    assert out['i2t_t2i_t2i'].item() == pytest.approx(t2i, rel=1e-5)
    assert out['loss_i2t_t2i'].item() == pytest.approx(0.5 * (i2t + t2i), rel=1e-5)


def test_contrastive_gradient_reaches_text_only_when_image_is_detached():
    img = torch.randn(4, 3)
    text = torch.randn(4, 3, requires_grad=True)
    ImageTextContrastiveLoss()(img, text, torch.tensor([0, 0, 1, 1]))['loss_i2t_t2i'].backward()
    assert text.grad is not None and text.grad.abs().sum() > 0


def test_i2t_ce_hand_value():
    # image (1,0) of pid 0 against texts (1,0), (0,1): log p0 = −log(1 + 1/e), log p1 = log p0 − 1
    # ε = 0.1, C = 2: −(0.95 log p0 + 0.05 log p1) = log(1 + 1/e) + 0.05
    img, bank = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    out = ImageToTextCELoss(label_smoothing=0.1)(img, bank, torch.tensor([0]))
    assert out['loss_i2t_ce'].item() == pytest.approx(math.log(1 + 1 / math.e) + 0.05, abs=1e-6)
    assert out['i2t_ce_acc'].item() == 1.0


@pytest.mark.parametrize('eps,tau', [(0.0, 1.0), (0.1, 1.0), (0.1, 0.3)])
def test_i2t_ce_equals_loop(eps, tau):
    g = torch.Generator().manual_seed(1)
    img, bank = torch.randn(6, 4, generator=g), torch.randn(5, 4, generator=g)
    pids = torch.tensor([0, 4, 4, 2, 1, 3])
    out = ImageToTextCELoss(label_smoothing=eps, temperature=tau)(img, bank, pids)
    assert out['loss_i2t_ce'].item() == pytest.approx(loop_ce(img, bank, pids, eps, tau), rel=1e-5)


def test_registered_and_bad_options():
    assert LOSSES.get('ImageTextContrastiveLoss') is ImageTextContrastiveLoss
    assert LOSSES.get('ImageToTextCELoss') is ImageToTextCELoss
    with pytest.raises(ConfigError, match='temperature'):
        ImageTextContrastiveLoss(temperature=0)
    with pytest.raises(ConfigError, match='label_smoothing'):
        ImageToTextCELoss(label_smoothing=1.0)
    with pytest.raises(ValueError, match='text_bank'):
        ImageToTextCELoss()(torch.randn(2, 3), torch.randn(4, 5), torch.tensor([0, 1]))
