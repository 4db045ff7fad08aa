import pytest
import torch

from promptsg.errors import ConfigError
from promptsg.heads import LinearClassifier
from promptsg.registry import HEADS


def test_logits_are_feat_times_weight():
    head = HEADS.build(dict(type='LinearClassifier', in_channels=8, num_classes=5))
    assert head.fc.bias is None and head.num_classes == 5
    feat = torch.randn(3, 8)
    logits = head(feat)
    assert logits.shape == (3, 5)
    torch.testing.assert_close(logits, feat @ head.fc.weight.t())
    assert head.fc.weight.std().item() < 0.01  # N(0, 0.001^2) start


def test_bias_option_starts_at_zero():
    head = LinearClassifier(8, 5, bias=True)
    assert torch.equal(head.fc.bias, torch.zeros(5))


@pytest.mark.parametrize('args', [(0, 5), (8, 0)])
def test_bad_config(args):
    with pytest.raises(ConfigError):
        LinearClassifier(*args)
