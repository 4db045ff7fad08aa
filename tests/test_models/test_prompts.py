"""Prompt modules: the composed prompt puts s* into the frozen text encoder (SPEC §5.1), the fixed
prompt is encoded once, and the inversion network maps v (B, D) to one token (B, T)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from promptsg.errors import ConfigError
from promptsg.models.backbones import build_clip
from promptsg.models.prompts.composer import PLACEHOLDER, FixedPrompt, PromptComposer
from promptsg.models.prompts.inversion import InversionNetwork
from promptsg.models.prompts.text_encoder import CLIPTextEncoder
from promptsg.registry import PROMPT_MODULES


@pytest.fixture(scope='module')
def text_encoder() -> CLIPTextEncoder:
    torch.manual_seed(0)
    return CLIPTextEncoder.from_clip(build_clip('tiny-vit'), 'tiny-vit')


def _placeholder_token(text_encoder: CLIPTextEncoder, batch: int) -> torch.Tensor:
    """The token embedding of the placeholder word, (B, T): composing with it must give the
    plain encoding of the template with the placeholder written in."""
    ids = text_encoder.tokenize([PLACEHOLDER])
    return text_encoder.embed_tokens(ids)[0, 1].expand(batch, -1).clone()


@pytest.mark.parametrize(
    'template',
    [
        'A photo of a person.',
        'A photo of {} and {}.',
        'A photo of a {} {colour} hand.',
        'A photo of {0}.',
        'A photo of a {person',
    ],
)
def test_template_without_exactly_one_slot_is_a_config_error(template):
    with pytest.raises(ConfigError) as info:
        PromptComposer(template=template)
    assert repr(template) in str(info.value)
    assert '\n' not in str(info.value)


def test_composed_prompt_is_the_template_with_s_star_in_the_slot(text_encoder):
    composer = PromptComposer(template='A photo of a {} person.')
    with torch.no_grad():
        composed = composer(_placeholder_token(text_encoder, 2), text_encoder)
        plain = text_encoder.encode_text([f'A photo of a {PLACEHOLDER} person.'] * 2)
    assert composed.shape == (2, text_encoder.embed_dim)
    torch.testing.assert_close(composed, plain, rtol=1e-5, atol=1e-5)


def test_each_sample_gets_its_aspect(text_encoder):
    composer = PromptComposer(template='A photo of a {} {aspect} hand.', default_aspect='dorsal')
    aspects = ['dorsal right', 'palmar left', '']
    with torch.no_grad():
        composed = composer(_placeholder_token(text_encoder, 3), text_encoder, aspects)
        plain = text_encoder.encode_text(
            [f'A photo of a {PLACEHOLDER} {a} hand.' for a in ('dorsal right', 'palmar left')]
            + [f'A photo of a {PLACEHOLDER} dorsal hand.']
        )
    torch.testing.assert_close(composed, plain, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(composed[0], composed[1])


def test_s_star_changes_the_feature_and_receives_gradient(text_encoder):
    composer = PromptComposer()
    pseudo_token = torch.randn(4, text_encoder.width, requires_grad=True)
    feat = composer(pseudo_token, text_encoder)
    other = composer(pseudo_token.detach() + 0.5 * torch.randn(4, text_encoder.width), text_encoder)
    assert not torch.allclose(feat.detach(), other, atol=1e-4)
    feat.pow(2).sum().backward()
    assert pseudo_token.grad is not None
    assert (pseudo_token.grad.abs().sum(-1) > 0).all()  # every sample's token gets gradient
    assert all(p.grad is None and not p.requires_grad for p in text_encoder.parameters())


def test_template_changes_the_feature(text_encoder):
    pseudo_token = torch.randn(2, text_encoder.width)
    with torch.no_grad():
        a = PromptComposer('A photo of a {} person.')(pseudo_token, text_encoder)
        b = PromptComposer('A blurry frame of {} walking.')(pseudo_token, text_encoder)
    assert not torch.allclose(a, b, atol=1e-4)


def test_fixed_prompt_encodes_once_per_aspect(text_encoder, monkeypatch):
    fixed = FixedPrompt(template='A photo of a {aspect} hand.', default_aspect='dorsal')
    calls = []
    encode = text_encoder.encode_text
    monkeypatch.setattr(
        text_encoder, 'encode_text', lambda ids: calls.append(len(ids)) or encode(ids)
    )
    first = fixed(3, text_encoder, ['palmar', '', 'palmar'])
    again = fixed(2, text_encoder, ['dorsal', 'palmar'])
    assert sum(calls) == 2  # 'palmar' and the default 'dorsal', each encoded once
    with torch.no_grad():
        expected = encode(['A photo of a palmar hand.', 'A photo of a dorsal hand.'])
    torch.testing.assert_close(first, expected[[0, 1, 0]], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(again, expected[[1, 0]], rtol=1e-5, atol=1e-5)
    assert not first.requires_grad


@pytest.mark.parametrize('template', ['A photo of a {} person.', 'A photo of {who}.'])
def test_fixed_prompt_rejects_slots(template):
    with pytest.raises(ConfigError, match='fixed prompt'):
        FixedPrompt(template=template)


@pytest.mark.parametrize('variant, linears', [('simple', 2), ('paper', 3)])
def test_inversion_variants(variant, linears):
    net = InversionNetwork(in_dim=24, token_dim=16, variant=variant, hidden_dim=32)
    layers = list(net.mlp)
    assert sum(isinstance(m, nn.Linear) for m in layers) == linears
    assert isinstance(layers[-1], nn.BatchNorm1d) and layers[-1].num_features == 16
    assert isinstance(layers[-2], nn.Linear) and layers[-2].out_features == 16
    out = net(torch.randn(5, 24))
    assert out.shape == (5, 16)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_inversion_unknown_variant_names_choices():
    with pytest.raises(ConfigError, match=r"variant 'deep'.*\['simple', 'paper'\]"):
        PROMPT_MODULES.build(dict(type='InversionNetwork', in_dim=4, token_dim=4, variant='deep'))


def test_slot_survives_bpe_merges_across_it(text_encoder):
    """ "{}'s" must not merge the placeholder with the apostrophe (SPEC §3 v1 template)."""
    composer = PromptComposer("A detailed photo of {}'s {aspect} hand for identification.")
    row, slot, _ = composer._row('dorsal right', text_encoder)
    placeholder = text_encoder.tokenize(['*'])[0, 1]
    assert row[slot] == placeholder
    token = torch.randn(2, text_encoder.width)
    feats = composer(token, text_encoder, ['dorsal right', 'dorsal right'])
    assert feats.shape == (2, text_encoder.embed_dim) and not torch.allclose(feats[0], feats[1])


def test_text_transformer_runs_only_up_to_the_last_eot(text_encoder, monkeypatch):
    """The causal mask makes positions after EOT irrelevant: the truncated run equals the
    full 77-position one to 1e-5, for one aspect and for mixed aspects."""
    composer = PromptComposer(template='A photo of a {} {aspect} hand.', default_aspect='dorsal')
    lengths = []
    transformer = text_encoder.transformer
    real = transformer.forward
    monkeypatch.setattr(
        transformer, 'forward', lambda x, **kw: lengths.append(x.shape[1]) or real(x, **kw)
    )
    token = torch.randn(3, text_encoder.width)
    composed_lengths = []
    for aspects in (None, ['dorsal right', 'palmar left', '']):
        with torch.no_grad():
            feats = composer(token, text_encoder, aspects)
            composed_lengths.append(lengths[-1])
            full = torch.stack(
                [
                    _encode_full(composer, text_encoder, token[i], a)
                    for i, a in enumerate(aspects or [''] * 3)
                ]
            )
        torch.testing.assert_close(feats, full, rtol=1e-5, atol=1e-5)
    single, mixed = composed_lengths
    assert single == 1 + composer._row('dorsal', text_encoder)[2]
    longest = max(composer._row(a, text_encoder)[2] for a in ('dorsal right', 'palmar left'))
    assert mixed == 1 + longest < text_encoder.context_length


def _encode_full(composer, text_encoder, token, aspect):
    """The composed prompt through all 77 positions, the reference."""
    row, slot, eot = composer._row(aspect or composer.default_aspect, text_encoder)
    ids = torch.zeros(1, text_encoder.context_length, dtype=torch.long)
    ids[0, : len(row)] = torch.tensor(row)
    embeds = text_encoder.embed_tokens(ids).clone()
    embeds[0, slot] = token
    return text_encoder.encode_embeddings(embeds, torch.tensor([eot]))[0]


def test_prompt_ids_are_device_tables_built_once_per_aspect(text_encoder, monkeypatch):
    composer = PromptComposer(template='A photo of a {} {aspect} hand.', default_aspect='dorsal')
    calls = []
    real = text_encoder.tokenize
    monkeypatch.setattr(text_encoder, 'tokenize', lambda t: calls.append(t) or real(t))
    token = torch.randn(2, text_encoder.width)
    with torch.no_grad():
        for _ in range(3):
            composer(token, text_encoder, ['palmar', 'palmar'])
    once = len(calls)
    with torch.no_grad():
        composer(token, text_encoder, ['palmar', 'palmar'])
    assert len(calls) == once  # no tokenising after the first call
    ids, mask, eot = composer.tables(token.device)
    assert ids.shape == mask.shape == (1, text_encoder.context_length) and eot.shape == (1,)
    assert composer.tables(token.device)[0] is ids  # built once per device
    # not buffers: DDP would broadcast them, and ranks may have met different aspects
    assert dict(composer.named_buffers()) == {} and composer.state_dict() == {}
