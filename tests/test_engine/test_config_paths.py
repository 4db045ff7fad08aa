"""--data-root / --pretrained and num_classes=None are filled in before the Runner is built."""

from pathlib import Path

import pytest

from promptsg.engine.config import fill_num_classes, load_config
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


QUICKSTART = str(ROOT / 'configs' / 'quickstart' / 'synthetic_promptsg.py')


@pytest.mark.parametrize(
    ('key', 'value', 'expected'),
    [
        ('train_cfg.max_epochs', 'abc', "train_cfg.max_epochs='abc': expected a number.*30"),
        ('optim_wrapper.optimizer.lr', '1e-4x', 'expected a number'),
        ('train_dataloader.dataset.seed', 'zero', 'expected a number'),
    ],
)
def test_text_where_the_config_has_a_number_is_a_config_error(key, value, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(QUICKSTART, {key: value})


def test_typed_options_still_apply():
    cfg = load_config(QUICKSTART, {'train_cfg.max_epochs': 3, 'model.num_classes': None})
    assert cfg.train_cfg.max_epochs == 3 and cfg.model.num_classes is None
    cfg = load_config(QUICKSTART, {'model.backbone.arch': 'tiny-rn'})  # text over text
    assert cfg.model.backbone.arch == 'tiny-rn'
    cfg = load_config(QUICKSTART, {'log_processor.window_size': 'global'})  # a word mmengine takes
    assert cfg.log_processor.window_size == 'global'


@pytest.mark.parametrize(
    ('text', 'expected'),
    [
        ('model = dict(\n', r"bad\.py, line 1: '\(' was never closed"),
        ("_base_ = ['./no_such_base.py']\n", 'cannot read config .*bad.py: .*no_such_base'),
        ('x = undefined_name\n', "cannot read config .*NameError: name 'undefined_name'"),
        (
            "custom_imports = dict(imports=['no_such_plugin'], allow_failed_imports=False)\n",
            "ModuleNotFoundError: No module named 'no_such_plugin'",
        ),
    ],
)
def test_unreadable_config_is_one_line(tmp_path, text, expected):
    path = tmp_path / 'bad.py'
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected) as err:
        load_config(str(path))
    assert '\n' not in str(err.value)
