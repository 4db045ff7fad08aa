"""unfreeze_blocks through the Runner: frozen weights (and BN statistics) stay bit-identical,
the last blocks and every new module train, the text encoder never changes."""

from __future__ import annotations

import pytest
import torch
from engine_helpers import make_runner

CASES = {
    # arch: (unfreeze_blocks, prefixes that must stay frozen, prefixes that must train)
    'tiny-vit': (
        1,
        (
            'backbone.visual.conv1.',
            'backbone.visual.ln_pre.',
            'backbone.visual.transformer.resblocks.0.',
        ),
        ('backbone.visual.transformer.resblocks.1.', 'backbone.visual.proj'),
    ),
    'tiny-rn': (
        2,
        (
            'backbone.visual.conv1.',
            'backbone.visual.bn1.',
            'backbone.visual.layer1.',
            'backbone.visual.layer2.',
        ),
        ('backbone.visual.layer3.', 'backbone.visual.layer4.', 'backbone.visual.attnpool.'),
    ),
}


@pytest.mark.parametrize('arch', sorted(CASES))
def test_frozen_blocks_stay_bit_identical_through_training(tiny_config, tmp_path, arch):
    unfreeze, frozen, trained = CASES[arch]
    runner = make_runner(
        tiny_config(arch=arch),
        tmp_path / 'work',
        **{'model.backbone.unfreeze_blocks': unfreeze, 'train_cfg.max_epochs': 1},
    )
    model = runner.model
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    runner.train()
    after = model.state_dict()

    def changed(key: str) -> bool:
        return not torch.equal(before[key], after[key])

    keys = list(before)
    frozen_keys = [k for k in keys if k.startswith(frozen)]
    assert frozen_keys
    assert not [k for k in frozen_keys if changed(k)]  # weights and BN running stats
    text_keys = [k for k in keys if k.startswith('backbone.text_encoder.')]
    assert text_keys and not [k for k in text_keys if changed(k)]
    trained_params = [n for n, p in model.named_parameters() if n.startswith(trained)]
    assert trained_params and all(changed(n) for n in trained_params)
    for part in ('inversion.', 'interaction.', 'neck.', 'head.'):
        assert any(changed(n) for n, _ in model.named_parameters() if n.startswith(part)), part
