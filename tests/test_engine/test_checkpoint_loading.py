"""Safe checkpoint loading under torch >= 2.6: mmengine's own types load, arbitrary pickled
objects are refused in one line and never run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader, load_checkpoint

import promptsg.engine  # noqa: F401  (installs the loader)
from promptsg.engine.checkpoint import load_checkpoint_file
from promptsg.errors import CheckpointError


class Payload:
    """Stands for any object a malicious or careless checkpoint might carry."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, 'w')  # unpickling would create the marker file


def _mmengine_like_checkpoint() -> dict:
    """What mmengine's Runner saves (with the message hub history stored as arrays)."""
    return {
        'meta': {'epoch': 1, 'iter': 4, 'seed': 0, 'experiment_name': 'run'},
        'state_dict': {'fc.weight': torch.randn(2, 3), 'fc.bias': torch.zeros(2)},
        'message_hub': {
            'log_scalars': {
                'train/loss': {
                    '__history_buffer__': True,
                    'log_history': np.array([0.5, 0.4]),
                    'count_history': np.array([1, 1]),
                    'max_length': 1000000,
                }
            },
            'runtime_info': {'epoch': 1, 'best_score': np.float64(12.5), 'iter': np.int64(4)},
        },
        'optimizer': {'state': {}, 'param_groups': [{'lr': 1e-3, 'params': [0, 1]}]},
    }


def test_mmengine_types_load_with_weights_only(tmp_path):
    path = tmp_path / 'epoch_1.pth'
    saved = _mmengine_like_checkpoint()
    torch.save(saved, path)
    loaded = load_checkpoint_file(str(path))
    torch.testing.assert_close(loaded['state_dict']['fc.weight'], saved['state_dict']['fc.weight'])
    history = loaded['message_hub']['log_scalars']['train/loss']['log_history']
    assert np.array_equal(history, [0.5, 0.4])
    assert loaded['message_hub']['runtime_info']['best_score'] == 12.5


def test_mmengine_loads_through_the_safe_loader(tmp_path):
    path = tmp_path / 'model.pth'
    torch.save(_mmengine_like_checkpoint(), path)
    model = torch.nn.Sequential()
    model.add_module('fc', torch.nn.Linear(3, 2))
    checkpoint = load_checkpoint(model, str(path), map_location='cpu')
    assert checkpoint['meta']['epoch'] == 1
    torch.testing.assert_close(model.fc.bias.data, torch.zeros(2))
    assert CheckpointLoader._schemes[''] is load_checkpoint_file


def test_arbitrary_pickled_object_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / 'was_run'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': {'note': Payload(str(marker))}}, path)
    with pytest.raises(CheckpointError) as info:
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    message = str(info.value)
    assert '\n' not in message
    assert str(path) in message and 'open, which is not allow-listed' in message
    assert not marker.exists()


def test_custom_class_instance_is_refused(tmp_path):
    path = tmp_path / 'odd.pth'
    torch.save({'state_dict': {}, 'extra': {1, 2}, 'obj': np.random.default_rng(0)}, path)
    with pytest.raises(CheckpointError, match=r'odd.pth safely: it holds \S+'):
        load_checkpoint_file(str(path))


def test_missing_and_truncated_files(tmp_path):
    with pytest.raises(CheckpointError, match='checkpoint not found'):
        load_checkpoint_file(str(tmp_path / 'absent.pth'))
    whole = tmp_path / 'whole.pth'
    torch.save(_mmengine_like_checkpoint(), whole)
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(whole.read_bytes()[:200])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint_file(str(cut))
    assert 'cut.pth' in str(info.value) and '\n' not in str(info.value)
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint')
    with pytest.raises(CheckpointError, match='notes.pth'):
        load_checkpoint_file(str(text))
