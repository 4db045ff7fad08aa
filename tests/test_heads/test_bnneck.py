import pytest
import torch

from promptsg.errors import ConfigError
from promptsg.heads import BNNeck
from promptsg.registry import HEADS


def test_every_part_trains_by_default():
    neck = HEADS.build(dict(type='BNNeck', in_channels=16, bnneck_dim=8))
    assert all(p.requires_grad for p in neck.parameters())


def test_reduction_parts_train_and_bn_bias_can_be_frozen():
    torch.manual_seed(0)
    neck = HEADS.build(dict(type='BNNeck', in_channels=16, bnneck_dim=8, freeze_bias=True))
    assert neck.out_channels == 8
    names = {n for n, _ in neck.named_parameters()}
    assert names == {'reduction.weight', 'bn.weight', 'bn.bias'}
    out = neck(torch.randn(6, 16))
    assert out.shape == (6, 8)
    (out * torch.randn(6, 8)).sum().backward()  # a plain sum has zero gradient through BN
    trainable = {n: p for n, p in neck.named_parameters() if p.requires_grad}
    assert set(trainable) == {'reduction.weight', 'bn.weight'}
    for name, p in trainable.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert neck.bn.bias.grad is None and torch.equal(neck.bn.bias, torch.zeros(8))


def test_optimiser_updates_every_trainable_part():
    torch.manual_seed(0)
    neck = BNNeck(16, bnneck_dim=8, freeze_bias=False)
    before = {n: p.detach().clone() for n, p in neck.named_parameters()}
    opt = torch.optim.SGD([p for p in neck.parameters() if p.requires_grad], lr=0.1)
    (neck(torch.randn(6, 16)) * torch.randn(6, 8)).sum().backward()
    opt.step()
    for name, p in neck.named_parameters():
        assert not torch.equal(p, before[name]), name


def test_without_reduction_and_eval_mode():
    neck = BNNeck(4)
    assert neck.out_channels == 4 and isinstance(neck.reduction, torch.nn.Identity)
    neck(torch.randn(8, 4) * 3 + 1)
    neck.eval()
    x = torch.randn(1, 4)
    expected = (x - neck.bn.running_mean) / torch.sqrt(neck.bn.running_var + neck.bn.eps)
    torch.testing.assert_close(neck(x), expected)


@pytest.mark.parametrize('kwargs', [dict(in_channels=0), dict(in_channels=4, bnneck_dim=0)])
def test_bad_config(kwargs):
    with pytest.raises(ConfigError):
        BNNeck(**kwargs)
