import math

import pytest
import torch

from promptsg.heads import ArcFaceHead
from promptsg.losses import ArcFaceLoss
from promptsg.registry import LOSSES


def reference_loss(head, feats, labels, s, m):
    """Cross-entropy over loop-built margin logits (no smoothing)."""
    weight = torch.nn.functional.normalize(head.weight.detach(), dim=1).tolist()
    total = 0.0
    for f, y in zip(torch.nn.functional.normalize(feats, dim=1).tolist(), labels.tolist()):
        logits = []
        for j, w in enumerate(weight):
            c = sum(a * b for a, b in zip(f, w))
            if j == y:
                theta = math.acos(c)
                c = math.cos(theta + m) if theta + m < math.pi else c - m * math.sin(m)
            logits.append(s * c)
        log_z = math.log(sum(math.exp(v) for v in logits))
        total += log_z - logits[y]
    return total / len(labels)


@pytest.mark.parametrize('seed', [0, 1])
def test_cross_entropy_on_margin_logits(seed):
    torch.manual_seed(seed)
    head = ArcFaceHead(5, 4, scale=16.0, margin=0.35)
    feats, labels = torch.randn(6, 5), torch.randint(0, 4, (6,))
    loss = LOSSES.build(dict(type='ArcFaceLoss'))
    out = loss(head(feats, labels), labels)
    assert list(out) == ['loss_arcface'] and loss.label_smoothing == 0.0
    expected = reference_loss(head, feats, labels, 16.0, 0.35)
    assert out['loss_arcface'].item() == pytest.approx(expected, rel=1e-4)


def test_margin_makes_the_loss_larger():
    torch.manual_seed(0)
    head = ArcFaceHead(5, 4, margin=0.5)
    feats, labels = torch.randn(6, 5), torch.randint(0, 4, (6,))
    with_margin = ArcFaceLoss()(head(feats, labels), labels)['loss_arcface']
    without = ArcFaceLoss()(head(feats), labels)['loss_arcface']
    assert with_margin.item() > without.item()
