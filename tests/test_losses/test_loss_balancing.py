import math

import pytest
import torch
from mmengine.model import BaseModel

from promptsg.errors import ConfigError
from promptsg.losses import FixedWeights, LinearRampWeight, UncertaintyWeighting
from promptsg.registry import LOSSES


class _Parser(BaseModel):
    """Only to reach mmengine's parse_losses (the Runner's summing rule)."""

    def forward(self, *args, **kwargs):
        raise NotImplementedError


def _terms():
    return {
        'loss_ce': torch.tensor(2.0),
        'loss_triplet': torch.tensor(0.5),
        'loss_supcon': torch.tensor(4.0),
        'supcon_i2t': torch.tensor(1.5),
    }


def test_fixed_weights_multiply_and_log_weights():
    balancer = LOSSES.build(dict(type='FixedWeights', weights=dict(loss_supcon=0.5, loss_ce=0)))
    out = balancer(_terms())
    assert out['loss_supcon'].item() == 2.0 and out['loss_ce'].item() == 0.0
    assert out['loss_triplet'].item() == 0.5 and out['supcon_i2t'].item() == 1.5
    assert out['weight_supcon'].item() == 0.5 and out['weight_ce'].item() == 0.0
    total, _ = _Parser().parse_losses(out)
    assert total.item() == pytest.approx(2.5)


def test_linear_ramp_follows_schedule():
    balancer = LinearRampWeight('loss_supcon', start_weight=0.0, end_weight=1.0, begin=2, end=6)
    expected = {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.25, 4: 0.5, 5: 0.75, 6: 1.0, 9: 1.0}
    for epoch, w in expected.items():
        balancer.set_epoch(epoch)
        out = balancer(_terms())
        assert out['weight_supcon'].item() == w
        assert out['loss_supcon'].item() == 4.0 * w
        assert out['loss_ce'].item() == 2.0
    down = LinearRampWeight('loss_ce', start_weight=1.0, end_weight=0.2, begin=0, end=4)
    assert down.weight_at(2) == pytest.approx(0.6)


def test_uncertainty_weighting_form_and_reg_term():
    balancer = UncertaintyWeighting(terms=['loss_ce', 'loss_supcon'])
    with torch.no_grad():
        balancer.log_vars.copy_(torch.tensor([0.5, -0.3]))
    out = balancer(_terms())
    assert out['loss_ce'].item() == pytest.approx(2.0 * math.exp(-0.5))
    assert out['loss_supcon'].item() == pytest.approx(4.0 * math.exp(0.3))
    assert out['loss_triplet'].item() == 0.5
    assert out['loss_uncertainty_reg'].item() == pytest.approx(0.2)
    assert out['weight_ce'].item() == pytest.approx(math.exp(-0.5))
    assert not out['weight_ce'].requires_grad
    total, _ = _Parser().parse_losses(out)
    expected = 2.0 * math.exp(-0.5) + 4.0 * math.exp(0.3) + 0.5 + 0.2
    assert total.item() == pytest.approx(expected, rel=1e-6)


def test_uncertainty_log_vars_learn_log_of_the_loss():
    torch.manual_seed(0)
    # toy problem: two regression terms at very different scales (0.1 and 400 at the start)
    x = torch.nn.Parameter(torch.zeros(2))
    balancer = UncertaintyWeighting(terms=['loss_a', 'loss_b'])
    opt = torch.optim.Adam([x, *balancer.parameters()], lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        losses = {'loss_a': 0.1 * (x[0] - 1) ** 2, 'loss_b': 100 * (x[1] + 2) ** 2}
        sum(v for k, v in balancer(losses).items() if 'loss' in k).backward()
        opt.step()
    s_a, s_b = balancer.log_vars.tolist()
    assert s_a < -0.1 and s_b > 0.1  # small term weighted up, large term down
    # with fixed losses, the optimum of exp(-s) L + s is s = log L
    fixed = UncertaintyWeighting(terms=['loss_a', 'loss_b'])
    opt = torch.optim.Adam(fixed.parameters(), lr=0.1)
    constant = {'loss_a': torch.tensor(4.0), 'loss_b': torch.tensor(0.25)}
    for _ in range(300):
        opt.zero_grad()
        sum(v for k, v in fixed(constant).items() if 'loss' in k).backward()
        opt.step()
    torch.testing.assert_close(
        fixed.log_vars.detach(), torch.tensor([math.log(4.0), math.log(0.25)]), atol=0.02, rtol=0
    )


@pytest.mark.parametrize(
    'balancer',
    [
        FixedWeights(weights=dict(loss_id=1.0)),
        LinearRampWeight('loss_id', 0.0, 1.0, 0, 5),
        UncertaintyWeighting(terms=['loss_ce', 'loss_id']),
    ],
    ids=['fixed', 'ramp', 'uncertainty'],
)
def test_unknown_term_is_a_config_error(balancer):
    with pytest.raises(ConfigError, match='loss_id'):
        balancer(_terms())


@pytest.mark.parametrize(
    'cfg',
    [
        dict(type='FixedWeights', weights={}),
        dict(type='FixedWeights', weights=dict(supcon=0.5)),
        dict(type='FixedWeights', weights=dict(loss_supcon=-1.0)),
        dict(type='LinearRampWeight', term='loss_ce', start_weight=0, end_weight=1, begin=5, end=5),
        dict(
            type='LinearRampWeight', term='loss_ce', start_weight=-1, end_weight=1, begin=0, end=5
        ),
        dict(type='UncertaintyWeighting', terms=[]),
        dict(type='UncertaintyWeighting', terms=['loss_ce', 'loss_ce']),
    ],
)
def test_bad_config(cfg):
    with pytest.raises(ConfigError):
        LOSSES.build(cfg)
