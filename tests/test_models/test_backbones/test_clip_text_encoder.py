"""CLIPTextEncoder: exact match with open_clip's encode_text, frozen, yet differentiable."""

import torch

from promptsg.models.backbones import CLIPViT, build_clip
from promptsg.models.prompts.text_encoder import CLIPTextEncoder

TEXTS = ['A photo of a X person.', 'A photo of a X dorsal right hand.']


def _encoder():
    clip = build_clip('tiny-vit').eval()
    return clip, CLIPTextEncoder.from_clip(clip, 'tiny-vit')


def test_matches_open_clip_encode_text():
    clip, encoder = _encoder()
    ids = encoder.tokenize(TEXTS)
    assert ids.shape == (2, 77) and ids.dtype == torch.long
    assert torch.equal(encoder.eot_index(ids), ids.argmax(-1))
    with torch.no_grad():
        expected = clip.encode_text(ids, normalize=False)
        embeds = encoder.embed_tokens(ids)
        assert embeds.shape == (2, 77, encoder.width)
        assert torch.equal(encoder.encode_embeddings(embeds, encoder.eot_index(ids)), expected)
        assert torch.equal(encoder.encode_text(TEXTS), expected)
        # causal mask: positions after EOT do not matter, so a shorter sequence gives the same
        length = int(ids.argmax(-1).max()) + 1
        short = encoder.encode_embeddings(embeds[:, :length], encoder.eot_index(ids))
        assert torch.allclose(short, expected, atol=1e-5)
    assert (encoder.width, encoder.embed_dim, encoder.context_length) == (64, 64, 77)


def test_frozen_but_gradient_reaches_token_embeddings():
    _, encoder = _encoder()
    encoder.train()
    assert not encoder.training
    assert not any(p.requires_grad for p in encoder.parameters())
    ids = encoder.tokenize(TEXTS)
    embeds = encoder.embed_tokens(ids).detach().requires_grad_(True)
    encoder.encode_embeddings(embeds, encoder.eot_index(ids)).pow(2).sum().backward()
    assert embeds.grad is not None and embeds.grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.parameters())


def test_pseudo_token_changes_the_feature():
    _, encoder = _encoder()
    ids = encoder.tokenize(TEXTS[:1])
    slot = 5  # 'x' in '<sot> a photo of a x person . <eot>'
    embeds = encoder.embed_tokens(ids)
    moved = embeds.clone()
    moved[:, slot] = torch.randn(encoder.width)
    with torch.no_grad():
        a = encoder.encode_embeddings(embeds, encoder.eot_index(ids))
        b = encoder.encode_embeddings(moved, encoder.eot_index(ids))
    assert not torch.allclose(a, b)


def test_backbone_keeps_text_encoder_in_eval():
    backbone = CLIPViT(arch='tiny-vit', img_size=(256, 128))
    backbone.train()
    assert backbone.training and backbone.visual.training
    assert not backbone.text_encoder.training
    assert backbone.text_encoder.tokenize(['a person']).shape == (1, 77)
