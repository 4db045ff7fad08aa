"""``tools/train.py`` and the chronology build each data set once: the sets checked before
training are the ones the Runner trains, validates and tests on (its config dump keeps the
dataset configs)."""

from __future__ import annotations

from collections import Counter

import pytest
from engine_helpers import load_tool, write_config
from mmengine.config import Config

from promptsg.datasets.base import ReIDDataset


@pytest.fixture
def file_checks(monkeypatch) -> Counter:
    """How many times each split's image files were checked (once per data set built)."""
    counts: Counter = Counter()
    check = ReIDDataset._check_files

    def counted(self, samples):
        counts[self.split] += 1
        return check(self, samples)

    monkeypatch.setattr(ReIDDataset, '_check_files', counted)
    return counts


def test_train_tool_builds_train_val_and_test_sets_once(tmp_path, file_checks):
    config = write_config(tmp_path)
    work = tmp_path / 'work'
    load_tool('train').main(
        [
            str(config),
            '--work-dir',
            str(work),
            '--cfg-options',
            'model.num_classes=None',
            'train_cfg.max_epochs=1',
        ]
    )
    assert dict(file_checks) == {'train': 1, 'val': 1, 'test': 1}
    assert (work / 'test_metrics.json').is_file()
    (dump,) = work.glob('*.py')
    saved = Config.fromfile(str(dump))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert saved[loader].dataset.type == 'SyntheticReID'  # a config, not an object
    assert saved.model.num_classes == 8  # counted on the one training set built
