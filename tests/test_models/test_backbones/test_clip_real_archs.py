"""The contract of docs/architecture.md on the real (random-init) ViT-B/16 and RN50 shapes."""

import pytest
import torch

from promptsg.models.backbones import CLIPResNet, CLIPViT


@pytest.mark.parametrize(
    'cls, arch, embed_dim', [(CLIPViT, 'ViT-B-16', 512), (CLIPResNet, 'RN50', 1024)]
)
def test_real_arch_dims(cls, arch, embed_dim):
    backbone = cls(arch=arch, img_size=(256, 128)).eval()
    with torch.no_grad():
        global_feat, tokens = backbone(torch.randn(1, 3, 256, 128))
    n_tokens = 16 * 8 if arch == 'ViT-B-16' else 8 * 4
    assert global_feat.shape == (1, embed_dim) and tokens.shape == (1, n_tokens, embed_dim)
    assert backbone.embed_dim == embed_dim and backbone.num_tokens == n_tokens
    assert backbone.text_encoder.width == 512
    assert backbone.text_encoder.embed_dim == embed_dim
