import math

import pytest
import torch

from promptsg.errors import ConfigError
from promptsg.heads import ArcFaceHead
from promptsg.registry import HEADS


def reference_arcface(feats, weight, labels, s, m, easy):
    """Loops with math.acos: target cos(theta + m) with the th/mm or easy-margin fallback."""

    def unit(r):
        n = math.sqrt(sum(x * x for x in r))
        return [x / n for x in r]

    ws = [unit(w) for w in weight.tolist()]
    out = []
    for f, y in zip(feats.tolist(), labels.tolist()):
        f = unit(f)
        row = []
        for j, w in enumerate(ws):
            c = sum(a * b for a, b in zip(f, w))
            if j == y:
                theta = math.acos(max(-1.0, min(1.0, c)))
                if easy:
                    c = math.cos(theta + m) if c > 0 else c
                else:
                    c = math.cos(theta + m) if theta + m < math.pi else c - m * math.sin(m)
            row.append(s * c)
        out.append(row)
    return torch.tensor(out)


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('easy', [False, True])
def test_margin_logits_match_loop_reference(seed, easy):
    torch.manual_seed(seed)
    head = ArcFaceHead(6, 5, scale=30.0, margin=0.5, easy_margin=easy)
    feats, labels = torch.randn(8, 6), torch.randint(0, 5, (8,))
    expected = reference_arcface(feats, head.weight.detach(), labels, 30.0, 0.5, easy)
    torch.testing.assert_close(head(feats, labels), expected, atol=1e-4, rtol=1e-5)


def test_fallback_past_pi_minus_m():
    # cos = -0.99 at the target: theta + m > pi, so the logit is s * (cos - m sin m)
    head = ArcFaceHead(2, 2, scale=10.0, margin=0.5)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    feat = torch.tensor([[-0.99, math.sqrt(1 - 0.99**2)]])
    logits = head(feat, torch.tensor([0]))
    assert logits[0, 0].item() == pytest.approx(10 * (-0.99 - 0.5 * math.sin(0.5)), abs=1e-4)
    assert logits[0, 1].item() == pytest.approx(10 * math.sqrt(1 - 0.99**2), abs=1e-4)


def test_zero_margin_and_inference_give_scaled_cosine_exactly():
    torch.manual_seed(0)
    head = HEADS.build(dict(type='ArcFaceHead', in_channels=6, num_classes=4, margin=0.0))
    feats, labels = torch.randn(5, 6), torch.randint(0, 4, (5,))
    scaled_cos = head.cosine(feats) * 30.0
    assert torch.equal(head(feats, labels), scaled_cos)
    head.margin = 0.5
    assert torch.equal(head(feats), scaled_cos)


@pytest.mark.parametrize('sign', [1.0, -1.0])
@pytest.mark.parametrize('easy', [False, True])
def test_finite_gradients_at_cos_plus_minus_one(sign, easy):
    torch.manual_seed(0)
    head = ArcFaceHead(4, 3, margin=0.5, easy_margin=easy)
    with torch.no_grad():
        head.weight[0] = torch.tensor([1.0, 0.0, 0.0, 0.0])
    # row 0: exactly cos = +-1 (axis-aligned); row 1: a copy of a random weight row
    feats = torch.stack([sign * 2 * head.weight[0], sign * head.weight[1]]).detach()
    feats.requires_grad_()
    labels = torch.tensor([0, 1])
    assert head.cosine(feats)[0, 0].item() == sign
    logits = head(feats, labels)
    torch.nn.functional.cross_entropy(logits, labels).backward()
    assert torch.isfinite(logits).all()
    assert torch.isfinite(feats.grad).all() and torch.isfinite(head.weight.grad).all()


@pytest.mark.parametrize(
    'kwargs',
    [
        dict(scale=0.0),
        dict(margin=-0.1),
        dict(margin=2.0),
        dict(num_classes=0),
        dict(in_channels=0),
    ],
)
def test_bad_config(kwargs):
    args = dict(in_channels=4, num_classes=3) | kwargs
    with pytest.raises(ConfigError):
        ArcFaceHead(**args)
