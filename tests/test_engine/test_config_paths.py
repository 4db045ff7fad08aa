"""--data-root / --pretrained and num_classes=None are filled in before the Runner is built."""

from pathlib import Path

import pytest

from promptsg.engine.runner import fill_num_classes, load_config
from promptsg.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_data_root_and_pretrained_reach_every_loader_and_the_backbone():
    cfg = load_config(
        str(ROOT / 'configs' / 'vit_b16' / 'v6.py'), data_root='/data/11k', pretrained='/w/b16.pt'
    )
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.data_root == '/data/11k'
    assert cfg.model.backbone.pretrained == '/w/b16.pt'


def test_cfg_options_win_over_data_root():
    cfg = load_config(
        str(ROOT / 'configs' / 'vit_b16' / 'v1.py'),
        {'test_dataloader.dataset.data_root': '/other'},
        data_root='/data/11k',
    )
    assert cfg.train_dataloader.dataset.data_root == '/data/11k'
    assert cfg.test_dataloader.dataset.data_root == '/other'


def test_num_classes_none_is_counted_from_the_training_set():
    cfg = load_config(
        str(ROOT / 'configs' / 'quickstart' / 'synthetic_promptsg.py'),
        {'model.num_classes': None, 'train_dataloader.dataset.num_train_ids': 12},
    )
    assert fill_num_classes(cfg) == 12 and cfg.model.num_classes == 12
    assert fill_num_classes(cfg) is None  # already set: nothing to fill


def test_unknown_option_key_is_a_config_error_naming_close_keys():
    with pytest.raises(ConfigError, match="'train_dataloder'.*train_dataloader"):
        load_config(
            str(ROOT / 'configs' / 'quickstart' / 'synthetic_promptsg.py'),
            {'train_dataloder.batch_size': 8},
        )
