"""Faults that hung or printed a traceback, each now one ``error:`` line with exit status 2:
batch sizes out of range, wrong value types written in the config file, a component without
``type``, a config without ``model``, a misspelled loss type, a ``_base_`` cycle, a truncated
image read by a data-loader worker, and a random or malicious checkpoint."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from engine_helpers import load_tool, unique_name
from PIL import Image

from promptsg.datasets.folder import CSVDataset
from promptsg.datasets.samplers import PKSampler
from promptsg.engine.checkpoint import load_checkpoint_file
from promptsg.engine.cli import run_cli
from promptsg.engine.config import read_config
from promptsg.errors import CheckpointError, ConfigError


def _train_error(capsys, config, *options: str, work_dir) -> str:
    """Run tools/train.py in-process through run_cli; return its one stderr line."""
    argv = [str(config), '--work-dir', str(work_dir), '--no-test', '--cfg-options']
    argv += [f'experiment_name={unique_name()}', *options]
    train = load_tool('train')
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        run_cli(lambda: train.main(argv))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert '\n' not in err and err.startswith('error: '), err
    return err


@pytest.mark.parametrize(
    ('option', 'expected'),
    [
        (
            'train_dataloader.batch_size=0',
            'train_dataloader.batch_size must be a positive integer; got 0',
        ),
        (
            'train_dataloader.batch_size=-4',
            'train_dataloader.batch_size must be a positive integer; got -4',
        ),
        (
            'val_dataloader.batch_size=0',
            'val_dataloader.batch_size must be a positive integer; got 0',
        ),
        (
            'model.losses.triplet.type=TripletLos',
            "unknown loss 'TripletLos'; registered ",
        ),
    ],
)
def test_bad_options_are_one_line(tiny_config, tmp_path, capsys, option, expected):
    err = _train_error(capsys, tiny_config(), option, work_dir=tmp_path / 'work')
    assert err.startswith(f'error: {expected}')


@pytest.mark.parametrize(
    ('extra', 'expected'),
    [
        (
            "train_dataloader = dict(batch_size='16')\n",
            "train_dataloader.batch_size must be a positive integer; got '16'",
        ),
        (
            "train_cfg = dict(max_epochs='3')\n",
            "train_cfg.max_epochs must be a positive integer; got '3'",
        ),
        (
            'model = dict(head=dict(_delete_=True, in_channels=8))\n',
            "error: a component config has no 'type' key: ",
        ),
    ],
)
def test_bad_values_in_the_config_file_are_one_line(tiny_config, tmp_path, capsys, extra, expected):
    err = _train_error(capsys, tiny_config(extra), work_dir=tmp_path / 'work')
    assert expected in err


def test_a_config_without_model_is_one_line(tmp_path, capsys):
    from engine_helpers import RUNTIME

    config = tmp_path / 'no_model.py'
    config.write_text(f"_base_ = [{str(RUNTIME)!r}]\nexperiment_name = 'no_model'\n")
    err = _train_error(capsys, config, work_dir=tmp_path / 'work')
    assert err.startswith(f'error: config {config} has no model')


def test_pk_sampler_refuses_a_batch_size_of_zero_instead_of_hanging():
    class Pids:
        pids = [0, 0, 1, 1]

    with pytest.raises(ConfigError, match='batch_size must be a positive integer; got 0'):
        PKSampler(Pids(), batch_size=0, num_instances=2, seed=0)


def test_a_base_cycle_is_one_line_at_once(tmp_path):
    (tmp_path / 'a.py').write_text("_base_ = ['./b.py']\nx = 1\n")
    (tmp_path / 'b.py').write_text("_base_ = './c.py'\n")
    (tmp_path / 'c.py').write_text("_base_ = ['./a.py']\n")
    with pytest.raises(
        ConfigError, match=r'_base_ cycle in config .*a\.py -> .*b\.py -> .*c\.py -> .*a\.py'
    ):
        read_config(str(tmp_path / 'a.py'))


def test_a_truncated_image_in_a_worker_shows_the_cause_not_the_traceback(tmp_path, capsys):
    for i in range(2):
        Image.new('RGB', (64, 64), (i * 90, 20, 200)).save(tmp_path / f'img_{i}.jpg', quality=95)
    data = (tmp_path / 'img_1.jpg').read_bytes()
    (tmp_path / 'img_1.jpg').write_bytes(data[: len(data) // 2])  # header intact, pixels cut
    (tmp_path / 'list.csv').write_text('path,pid\nimg_0.jpg,0\nimg_1.jpg,1\n')
    dataset = CSVDataset(
        str(tmp_path), 'list.csv', pipeline=[dict(type='LoadImage')], check_images=False
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=1, collate_fn=list)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        run_cli(lambda: list(loader))
    err = capsys.readouterr().err.strip()
    assert '\n' not in err and 'Traceback' not in err
    assert err.startswith(f'error: cannot read image {tmp_path / "img_1.jpg"}: Truncated File Read')
    assert err.endswith('(in DataLoader worker process 0)')
    assert len(err) < 300


class _Evil:
    def __reduce__(self):
        return (os.system, ('echo never',))


def test_random_and_malicious_checkpoints_never_suggest_unsafe_loading(tmp_path):
    (tmp_path / 'random.pth').write_bytes(bytes(range(256)) * 8)
    torch.save({'state_dict': _Evil()}, tmp_path / 'evil.pth')
    with open(tmp_path / 'evil_pickle.pth', 'wb') as f:
        pickle.dump({'state_dict': _Evil()}, f)
    for name in ('random.pth', 'evil.pth', 'evil_pickle.pth'):
        with pytest.raises(CheckpointError) as info:
            load_checkpoint_file(str(tmp_path / name))
        message = str(info.value)
        assert 'weights_only' not in message and 'likely succeed' not in message, message
        assert message.startswith(f'cannot load checkpoint {tmp_path / name}')
    with pytest.raises(CheckpointError, match='it holds posix.system, which is not allow-listed'):
        load_checkpoint_file(str(tmp_path / 'evil.pth'))


def test_a_broken_test_set_stops_the_run_before_training(tiny_config, tmp_path, capsys):
    """The test set's list is checked before the first iteration, naming its file and row."""
    data = tmp_path / 'data'
    data.mkdir()
    Image.new('RGB', (32, 64)).save(data / 'q.png')
    (data / 'list.csv').write_text('path,pid,camid,is_query\nq.png,1,0,1\nq.png,1')
    extra = (
        'test_dataloader = dict(test_dataloader, dataset=dict(type="CSVDataset", '
        f'data_root={str(data)!r}, ann_file="list.csv", test_mode=True, pipeline=test_pipeline))\n'
    )
    work = tmp_path / 'work'
    argv = [str(tiny_config(extra)), '--work-dir', str(work)]
    argv += ['--cfg-options', f'experiment_name={unique_name()}']
    train = load_tool('train')
    capsys.readouterr()
    with pytest.raises(SystemExit):
        run_cli(lambda: train.main(argv))
    err = capsys.readouterr().err.strip()
    assert err == (
        f'error: test_dataloader.dataset: {data / "list.csv"} line 3: 2 of 4 fields, no camid, '
        'is_query (a row cut short?)'
    )
    assert not list(work.glob('*.pth'))  # no epoch was trained
