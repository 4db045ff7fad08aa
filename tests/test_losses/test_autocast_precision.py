"""Every loss (and the ArcFace margin) computes in float32 even inside a bf16/fp16 autocast."""

from __future__ import annotations

import pytest
import torch

from promptsg.heads import ArcFaceHead
from promptsg.losses import ArcFaceLoss, CenterLoss, CrossEntropyLoss, SupConLoss, TripletLoss

AMP_DTYPES = [torch.bfloat16, torch.float16]


def _feats(seed: int = 0, n: int = 16, dim: int = 64, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)) * scale


LABELS = torch.arange(8).repeat_interleave(2)


def _under(dtype, fn):
    with torch.autocast('cpu', dtype=dtype):
        return fn()


@pytest.mark.parametrize('dtype', AMP_DTYPES)
def test_triplet_distances_are_float32_under_autocast(dtype):
    feats = _feats(scale=0.9)  # distances near 9, where bf16 is off by ~0.1
    loss = TripletLoss(margin=0.3)
    ref = loss(feats, LABELS)['loss_triplet']
    got = _under(dtype, lambda: loss(feats.to(dtype), LABELS)['loss_triplet'])
    assert got.dtype == torch.float32
    expected = loss(feats.to(dtype).float(), LABELS)['loss_triplet']  # same rounded inputs
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    assert torch.isclose(got, ref, atol=0.05)


@pytest.mark.parametrize('dtype', AMP_DTYPES)
def test_supcon_similarities_are_float32_under_autocast(dtype):
    img, text = _feats(1), _feats(2)
    loss = SupConLoss(temperature=0.07)
    got = _under(dtype, lambda: loss(img, text, LABELS)['loss_supcon'])
    torch.testing.assert_close(got, loss(img, text, LABELS)['loss_supcon'], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('dtype', AMP_DTYPES)
def test_arcface_margin_logits_are_float32_under_autocast(dtype):
    torch.manual_seed(0)
    head = ArcFaceHead(64, 8, scale=30.0, margin=0.5)
    feats = _feats(3)
    ref = head(feats, LABELS)
    got = _under(dtype, lambda: head(feats, LABELS))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-5)
    loss = ArcFaceLoss()
    ref_loss = loss(ref, LABELS)['loss_arcface']
    got_loss = _under(dtype, lambda: loss(head(feats, LABELS), LABELS)['loss_arcface'])
    torch.testing.assert_close(got_loss, ref_loss, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('dtype', AMP_DTYPES)
def test_cross_entropy_and_center_losses_are_float32_under_autocast(dtype):
    logits = _feats(4, dim=8) * 10
    ce = CrossEntropyLoss()
    got = _under(dtype, lambda: ce(logits, LABELS)['loss_ce'])
    torch.testing.assert_close(got, ce(logits, LABELS)['loss_ce'], rtol=1e-6, atol=1e-6)
    torch.manual_seed(0)
    center = CenterLoss(num_classes=8, feat_dim=64)
    feats = _feats(5)
    got = _under(dtype, lambda: center(feats, LABELS)['loss_center'])
    torch.testing.assert_close(got, center(feats, LABELS)['loss_center'], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('dtype', AMP_DTYPES)
def test_gradients_reach_low_precision_inputs(dtype):
    feats = _feats(6).to(dtype).requires_grad_(True)
    with torch.autocast('cpu', dtype=dtype):
        TripletLoss()(feats, LABELS)['loss_triplet'].backward()
    assert feats.grad is not None and feats.grad.dtype == dtype


@pytest.mark.parametrize('dtype', AMP_DTYPES)
def test_clip_reid_losses_are_float32_under_autocast(dtype):
    """The image-text losses get float32 from WeightedLoss itself (no per-class decorator)."""
    from promptsg.losses import ImageTextContrastiveLoss, ImageToTextCELoss

    img, text = _feats(3, scale=3.0), _feats(4, scale=3.0)
    bank = _feats(5, n=8, scale=3.0)  # one text feature per identity
    cases = [
        (ImageTextContrastiveLoss(), (img, text, LABELS)),
        (ImageToTextCELoss(), (img, bank, LABELS)),
    ]
    for loss, (a, b, labels) in cases:
        got = _under(dtype, lambda: loss(a.to(dtype), b.to(dtype), labels))  # noqa: B023
        expected = loss(a.to(dtype).float(), b.to(dtype).float(), labels)
        for key, value in got.items():
            assert value.dtype == torch.float32, key
            torch.testing.assert_close(value, expected[key], rtol=1e-6, atol=1e-6)


def test_a_new_loss_subclass_is_float32_without_a_decorator():
    """A plugin's WeightedLoss subclass computes its matmul in float32 under autocast."""
    from promptsg.losses.base import WeightedLoss

    class PluginLoss(WeightedLoss):
        def __init__(self):
            super().__init__(1.0, 'loss_plugin')

        def forward(self, x):
            return self.named((x @ x.t()).sum())

    x = _feats(6)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = PluginLoss()(x.bfloat16())['loss_plugin']
    assert got.dtype == torch.float32
