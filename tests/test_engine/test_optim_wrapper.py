"""ReIDOptimWrapper: clipping before the step, the non-finite guard, autocast, accumulation."""

from __future__ import annotations

import pytest
import torch
from mmengine.logging import MessageHub
from torch import nn

from promptsg.engine.optimizers import NonFiniteLossError, ReIDOptimWrapper
from promptsg.errors import ConfigError


class TwoTerms(nn.Module):
    """A model whose forward returns named loss terms; ``poison`` makes one non-finite."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(4, 4)
        self.head = nn.Linear(4, 1)
        self.poison: str | None = None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.head(self.encoder(x))
        losses = {'loss_a': out.pow(2).mean() * 100, 'loss_b': out.abs().mean()}
        if self.poison == 'nan_loss':
            losses['loss_b'] = losses['loss_b'] * float('nan')
        elif self.poison == 'nan_grad':  # finite loss, NaN gradient: sqrt at 0
            losses['loss_b'] = losses['loss_b'] + torch.sqrt(self.encoder.weight[0, 0] * 0)
        return losses


def _step(wrapper: ReIDOptimWrapper, model: TwoTerms, x: torch.Tensor) -> dict:
    with wrapper.optim_context(model):
        losses = model(x)
    wrapper.update_params(sum(losses.values()))
    return losses


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _wrapper(model: nn.Module, **kwargs) -> ReIDOptimWrapper:
    return ReIDOptimWrapper(torch.optim.SGD(model.parameters(), lr=1.0), **kwargs)


@pytest.fixture
def data() -> torch.Tensor:
    return torch.randn(8, 4, generator=torch.Generator().manual_seed(0)) * 10


def test_clipping_bounds_the_applied_gradient_norm(data):
    torch.manual_seed(0)
    model = TwoTerms()
    wrapper = _wrapper(model, clip_grad=dict(max_norm=0.5))
    applied = []
    wrapper.optimizer.register_step_pre_hook(
        lambda opt, *_: applied.append(
            torch.linalg.vector_norm(
                torch.stack([p.grad.norm() for g in opt.param_groups for p in g['params']])
            ).item()
        )
    )
    before = _snapshot(model)
    _step(wrapper, model, data)
    raw = MessageHub.get_current_instance().get_scalar('train/grad_norm').current()
    assert raw > 5  # the loss is large: clipping has work to do
    assert applied[0] <= 0.5 + 1e-5  # clipped before optimizer.step
    # SGD with lr 1: the update is exactly the clipped gradient.
    moved = torch.linalg.vector_norm(
        torch.stack([(p.detach() - before[n]).norm() for n, p in model.named_parameters()])
    )
    assert moved.item() == pytest.approx(applied[0], rel=1e-4)

    torch.manual_seed(0)
    model = TwoTerms()
    wrapper = _wrapper(model)
    wrapper.optimizer.register_step_pre_hook(
        lambda opt, *_: applied.append(
            torch.linalg.vector_norm(
                torch.stack([p.grad.norm() for g in opt.param_groups for p in g['params']])
            ).item()
        )
    )
    _step(wrapper, model, data)
    assert applied[1] == pytest.approx(raw, rel=1e-4)  # no clipping without clip_grad


def test_skip_policy_names_the_term_skips_and_counts(data):
    model = TwoTerms()
    wrapper = _wrapper(model, nonfinite='skip')
    before = _snapshot(model)
    model.poison = 'nan_loss'
    _step(wrapper, model, data)
    assert wrapper.nonfinite_skips == 1
    assert 'loss_b' in wrapper.last_nonfinite and 'loss_a' not in wrapper.last_nonfinite
    after = _snapshot(model)
    assert all(torch.equal(before[n], after[n]) for n in before)  # no update
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())  # grads cleared
    assert MessageHub.get_current_instance().get_scalar('train/nonfinite_skips').current() == 1
    model.poison = None
    _step(wrapper, model, data)
    assert not torch.equal(before['head.weight'], model.head.weight)  # training goes on
    assert torch.isfinite(model.head.weight).all()
    assert wrapper.state_dict()['nonfinite_skips'] == 1


def test_skip_policy_catches_a_nonfinite_gradient_of_a_finite_loss(data):
    model = TwoTerms()
    wrapper = _wrapper(model, nonfinite='skip')
    before = _snapshot(model)
    model.poison = 'nan_grad'
    losses = _step(wrapper, model, data)
    assert all(torch.isfinite(v) for v in losses.values())
    assert wrapper.nonfinite_skips == 1
    assert 'gradient of encoder.weight' in wrapper.last_nonfinite
    assert torch.equal(before['encoder.weight'], model.encoder.weight)


def test_stop_policy_raises_before_the_weights_change(data):
    MessageHub.get_current_instance().update_info('last_ckpt', '/runs/v1/epoch_3.pth')
    model = TwoTerms()
    wrapper = _wrapper(model, nonfinite='stop')
    before = _snapshot(model)
    model.poison = 'nan_loss'
    with pytest.raises(
        NonFiniteLossError, match=r'loss_b.*last good checkpoint is /runs/v1/epoch_3\.pth'
    ):
        _step(wrapper, model, data)
    after = _snapshot(model)
    assert all(torch.equal(before[n], after[n]) for n in before)


def test_skip_policy_stops_after_max_skips_in_a_row(data):
    model = TwoTerms()
    wrapper = _wrapper(model, nonfinite='skip', max_skips=3)
    model.poison = 'nan_loss'
    _step(wrapper, model, data)
    _step(wrapper, model, data)
    with pytest.raises(NonFiniteLossError, match='3 updates in a row'):
        _step(wrapper, model, data)


def test_a_bad_micro_batch_skips_its_whole_accumulation_window(data):
    model = TwoTerms()
    wrapper = _wrapper(model, accumulative_counts=2)
    wrapper.initialize_count_status(model, 0, 4)
    before = _snapshot(model)
    model.poison = 'nan_loss'
    _step(wrapper, model, data)  # micro-batch 1: accumulated, no step yet
    model.poison = None
    _step(wrapper, model, data)  # micro-batch 2: the window is non-finite -> skipped
    assert wrapper.nonfinite_skips == 1
    assert torch.equal(before['head.weight'], model.head.weight)
    _step(wrapper, model, data)
    _step(wrapper, model, data)
    assert not torch.equal(before['head.weight'], model.head.weight)


def test_accumulation_steps_once_per_window(data):
    model = TwoTerms()
    wrapper = ReIDOptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-3), accumulative_counts=2)
    wrapper.initialize_count_status(model, 0, 4)
    for _ in range(4):
        _step(wrapper, model, data)
    state = wrapper.optimizer.state[model.head.weight]
    assert int(state['step']) == 2


@pytest.mark.parametrize('dtype', ['bfloat16', 'float16'])
def test_autocast_on_cpu(data, dtype):
    model = TwoTerms()
    wrapper = _wrapper(model, dtype=dtype, loss_scale=dict(init_scale=256.0))
    seen = []
    model.encoder.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    before = _snapshot(model)
    _step(wrapper, model, data / 100)  # float16 gradients stay finite at this loss scale
    assert seen == [getattr(torch, dtype)]
    assert not torch.equal(before['head.weight'], model.head.weight)
    assert torch.isfinite(model.head.weight).all()
    state = wrapper.state_dict()
    assert ('loss_scaler' in state) == (dtype == 'float16')
    restored = _wrapper(TwoTerms(), dtype=dtype, loss_scale=dict(init_scale=256.0))
    restored.load_state_dict(state)


def test_autocast_device_is_resolved_when_the_step_runs(monkeypatch):
    """A wrapper built before the model moves (e.g. ``.cuda()``) autocasts where it now is."""
    from promptsg.engine.optimizers import optim_wrapper

    model = TwoTerms()
    wrapper = _wrapper(model, dtype='bfloat16')
    seen = []

    class Recorder:
        def __init__(self, device_type, dtype):
            seen.append((device_type, dtype))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(optim_wrapper.torch, 'autocast', Recorder)
    with wrapper.optim_context(model):
        pass
    model.to('meta')  # stands in for .cuda(), which this CPU machine cannot do
    with wrapper.optim_context(model):
        pass
    assert seen == [('cpu', torch.bfloat16), ('meta', torch.bfloat16)]


@pytest.mark.parametrize(
    'kwargs, key',
    [
        (dict(nonfinite='ignore'), 'nonfinite'),
        (dict(dtype='fp8'), 'dtype'),
        (dict(max_skips=0), 'max_skips'),
        (dict(clip_grad=5.0), 'clip_grad'),
    ],
)
def test_bad_arguments_are_config_errors(kwargs, key):
    with pytest.raises(ConfigError, match=f'optim_wrapper.{key}'):
        _wrapper(TwoTerms(), **kwargs)
