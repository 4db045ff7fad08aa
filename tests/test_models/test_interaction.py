"""MultimodalInteraction (MIM): the text feature attends over several visual tokens, so the
attention depends on the query and gradient reaches the prompt (SPEC §5.1)."""

from __future__ import annotations

import pytest
import torch

from promptsg.errors import ConfigError
from promptsg.models.interaction import MultimodalInteraction
from promptsg.registry import PROMPT_MODULES

B, M, D = 3, 6, 32


@pytest.fixture
def mim() -> MultimodalInteraction:
    torch.manual_seed(0)
    return PROMPT_MODULES.build(
        dict(
            type='MultimodalInteraction',
            dim=D,
            num_heads=4,
            num_cross_layers=1,
            keep_attention=True,
        )
    ).eval()


@pytest.fixture
def visual() -> torch.Tensor:
    return torch.randn(B, 1 + M, D, generator=torch.Generator().manual_seed(1))


def test_output_and_attention_shapes(mim, visual):
    out = mim(torch.randn(B, D), visual)
    assert out.shape == (B, D)
    attention = mim.last_attention
    assert attention.shape == (B, 1, 1 + M)
    torch.testing.assert_close(attention.sum(-1), torch.ones(B, 1))
    assert attention.max() < 1  # several keys: never the degenerate single-key weight of 1


def test_attention_depends_on_the_query(mim, visual):
    mim(torch.randn(B, D), visual)
    first = mim.last_attention.clone()
    mim(torch.randn(B, D), visual)
    assert not torch.allclose(first, mim.last_attention, atol=1e-4)


def test_output_depends_on_query_and_image(mim, visual):
    text = torch.randn(B, D)
    with torch.no_grad():
        base = mim(text, visual)
        assert not torch.allclose(base, mim(text + torch.randn(B, D), visual), atol=1e-4)
        assert not torch.allclose(base, mim(text, visual + torch.randn_like(visual)), atol=1e-4)


@pytest.mark.parametrize('num_self_layers', [0, 2])
def test_gradient_reaches_the_text_feature(num_self_layers, visual):
    mim = MultimodalInteraction(dim=D, num_heads=4, num_self_layers=num_self_layers)
    text = torch.randn(B, D, requires_grad=True)
    mim(text, visual).pow(2).sum().backward()
    assert text.grad is not None and (text.grad.abs().sum(-1) > 0).all()


def test_layer_counts_width_and_heads_are_options(visual):
    mim = MultimodalInteraction(
        dim=D, width=48, num_heads=6, num_cross_layers=2, num_self_layers=3, mlp_ratio=2.0
    )
    mim.keep_attention = True
    assert len(mim.cross) == 2 and len(mim.self_blocks) == 3
    assert mim.cross[0].attn.num_heads == 6 and mim.cross[0].attn.embed_dim == 48
    assert mim(torch.randn(B, D), visual).shape == (B, D)
    assert mim.last_attention.shape == (B, 1, 1 + M)


def test_dropout_only_in_training(visual):
    mim = MultimodalInteraction(dim=D, num_heads=4, dropout=0.5)
    text = torch.randn(B, D)
    mim.train()
    assert not torch.allclose(mim(text, visual), mim(text, visual))
    mim.eval()
    torch.testing.assert_close(mim(text, visual), mim(text, visual))


@pytest.mark.parametrize(
    'kwargs, match',
    [
        (dict(num_heads=5), r'width \(32\) must be divisible by num_heads \(5\)'),
        (dict(num_cross_layers=0), 'num_cross_layers >= 1'),
        (dict(num_self_layers=-1), 'num_self_layers >= 0'),
    ],
)
def test_bad_options_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        MultimodalInteraction(dim=D, **kwargs)


def test_attention_weights_are_kept_only_when_asked(visual, monkeypatch):
    mim = MultimodalInteraction(dim=D, num_heads=4)
    asked = []
    real = mim.cross[0].attn.forward
    monkeypatch.setattr(
        mim.cross[0].attn,
        'forward',
        lambda *a, **kw: asked.append(kw['need_weights']) or real(*a, **kw),
    )
    mim(torch.randn(B, D), visual)
    assert asked == [False] and mim.last_attention is None
    mim.keep_attention = True
    mim(torch.randn(B, D), visual)
    assert asked == [False, True] and mim.last_attention.shape == (B, 1, 1 + M)
