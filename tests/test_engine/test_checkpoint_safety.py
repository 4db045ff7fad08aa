"""Safe checkpoints: atomic writes, resolved config and package versions inside, a clear error
naming the mismatched keys when the weights do not fit the model, safe loading under torch 2.14."""

from __future__ import annotations

import os

import pytest
import torch
from engine_helpers import load_tool, make_runner, unique_name, write_config
from mmengine.config import Config

from promptsg.engine import fileio
from promptsg.engine.checkpoint import latest_checkpoint, load_checkpoint_file
from promptsg.engine.fileio import AtomicLocalBackend, atomic_write
from promptsg.engine.hooks.checkpoint import ReIDCheckpointHook
from promptsg.errors import CheckpointError


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A finished 2-epoch tiny run: (config path, work dir)."""
    folder = tmp_path_factory.mktemp('trained')
    config = write_config(folder)
    torch.set_num_threads(1)
    runner = make_runner(config, folder / 'work', **{'default_hooks.checkpoint.max_keep_ckpts': -1})
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, ReIDCheckpointHook))
    assert isinstance(hook.file_backend, AtomicLocalBackend)
    return config, folder / 'work'


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    target = tmp_path / 'epoch_1.pth'
    atomic_write(b'old checkpoint', target)

    def crash(src, dst):
        raise OSError('killed while saving')

    monkeypatch.setattr(fileio.os, 'replace', crash)
    with pytest.raises(OSError, match='killed'):
        AtomicLocalBackend().put(b'new checkpoint, half written', target)
    assert target.read_bytes() == b'old checkpoint'
    assert os.listdir(tmp_path) == ['epoch_1.pth']  # no temporary file left behind
    monkeypatch.undo()
    AtomicLocalBackend().put_text('new', target)
    assert target.read_text() == 'new'


def test_checkpoint_carries_resolved_config_versions_and_rng(trained):
    _, work = trained
    ckpt = load_checkpoint_file(str(work / 'epoch_2.pth'))
    cfg = Config.fromstring(ckpt['meta']['cfg'], file_format='.py')
    assert '_base_' not in cfg
    assert cfg.model.backbone.arch == 'tiny-vit'
    assert cfg.default_hooks.checkpoint.type == 'ReIDCheckpointHook'
    assert cfg.optim_wrapper.constructor == 'ReIDOptimWrapperConstructor'  # completed defaults
    versions = ckpt['meta']['versions']
    assert versions['torch'] == str(torch.__version__)
    assert {'promptsg', 'mmengine', 'open_clip', 'numpy', 'python'} <= set(versions)
    runtime = ckpt['message_hub']['runtime_info']
    assert torch.equal(runtime['rng_state']['torch'], runtime['rng_state']['torch'])
    assert runtime['early_stopping']['wait_count'] == 0
    assert {g['name'] for g in ckpt['optimizer']['param_groups']} == {'clip_visual', 'modules'}


def test_checkpoints_load_with_torch_safe_loader(trained):
    _, work = trained
    from promptsg.engine.checkpoint import SAFE_GLOBALS

    for path in work.glob('*.pth'):
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            torch.load(path, weights_only=True)  # no pickle of code, no env switch


def test_a_checkpoint_of_another_model_lists_the_mismatched_keys(trained, tmp_path):
    config, work = trained
    test = load_tool('test')
    best = str(next(work.glob('best_*.pth')))
    with pytest.raises(CheckpointError) as info:
        test.main(
            [
                str(config),
                best,
                '--work-dir',
                str(tmp_path / 'a'),
                '--cfg-options',
                'model.num_classes=9',
                f'experiment_name={unique_name()}',
            ]
        )
    message = str(info.value)
    assert '\n' not in message
    assert (
        'shape-mismatched' in message
        and 'head.fc.weight (8, 64) in checkpoint vs (9, 64)' in message
    )
    assert 'model.num_classes: 8 -> 9' in message

    with pytest.raises(CheckpointError) as info:
        test.main(
            [
                str(config),
                best,
                '--work-dir',
                str(tmp_path / 'b'),
                '--cfg-options',
                "model.backbone.arch='tiny-rn'",
                "model.backbone.type='CLIPResNet'",
                f'experiment_name={unique_name()}',
            ]
        )
    message = str(info.value)
    assert 'missing key(s): backbone.visual.' in message and 'unexpected key(s)' in message
    assert "model.backbone.arch: 'tiny-vit' -> 'tiny-rn'" in message

    metrics = test.main(
        [
            str(config),
            best,
            '--work-dir',
            str(tmp_path / 'c'),
            '--cfg-options',
            f'experiment_name={unique_name()}',
        ]
    )
    assert 'reid/mAP' in metrics  # the matching model loads


def test_resume_finds_the_latest_checkpoint_even_without_the_pointer(trained, tmp_path):
    _, work = trained
    assert latest_checkpoint(str(work)) == str(work / 'epoch_2.pth')
    pointer = work / 'last_checkpoint'
    saved = pointer.read_text()
    try:
        pointer.write_text('')  # killed while writing the pointer
        assert latest_checkpoint(str(work)) == str(work / 'epoch_2.pth')
    finally:
        pointer.write_text(saved)
    assert latest_checkpoint(str(tmp_path)) is None
