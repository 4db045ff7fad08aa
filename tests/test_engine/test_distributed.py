"""Two processes (gloo, CPU) through tools/dist_train.sh: DDP training steps keep the ranks in
sync, the P x K sampler splits identities across ranks, and the distributed evaluation equals
the single-process evaluation of the same features."""

from __future__ import annotations

import json
import pickle
from collections import Counter
from pathlib import Path

import pytest
from engine_helpers import ROOT, dist_train, subprocess_env, write_config

from promptsg.datasets.synthetic import SyntheticReID
from promptsg.evaluation.reid_metric import ReIDMetric

#: Records what each rank trained on and its final weights (a plugin loaded by custom_imports).
RECORD_PLUGIN = """
import json
import os

import torch
from mmengine.hooks import Hook

from promptsg.registry import HOOKS


@HOOKS.register_module()
class RecordRank(Hook):
    def __init__(self, out_dir):
        self.out_dir, self.batches = out_dir, []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        samples = data_batch['data_samples']
        pids, idx = samples['pid'].tolist(), samples['sample_idx'].tolist()
        self.batches.append(dict(epoch=runner.epoch, pid=pids, idx=idx))

    def after_train(self, runner):
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        weights = {k: v.double().sum().item() for k, v in model.state_dict().items()}
        record = dict(rank=runner.rank, world_size=runner.world_size, batches=self.batches,
                      weights=weights, wrapped=type(runner.model).__name__)
        with open(os.path.join(self.out_dir, f'rank{runner.rank}.json'), 'w') as f:
            json.dump(record, f)
"""


@pytest.mark.slow
@pytest.mark.dist
def test_two_process_training_and_evaluation(tmp_path):
    dump = tmp_path / 'test_features.pkl'
    (tmp_path / 'record_rank.py').write_text(RECORD_PLUGIN)
    write_config(tmp_path)
    config = tmp_path / 'dist.py'
    config.write_text(
        "_base_ = ['./tiny.py']\n"
        + (
            "custom_imports = dict(imports=['record_rank'], allow_failed_imports=False)\n"
            f"custom_hooks = [dict(type='RecordRank', out_dir={str(tmp_path)!r})]\n"
            # 5 test ids x 3 images: 15 samples, so the sampler pads one rank's share.
            'test_dataloader = dict(batch_size=3, dataset=dict(num_test_ids=5, images_per_id=3))\n'
            'test_evaluator = [dict(type="ReIDMetric"), '
            f'dict(type="DumpResults", out_file_path={str(dump)!r})]\n'
        )
    )
    env = subprocess_env(PYTHONPATH=f'{ROOT}:{tmp_path}')
    work = tmp_path / 'work'
    proc = dist_train(config, work, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]

    ranks = [json.loads((tmp_path / f'rank{r}.json').read_text()) for r in (0, 1)]
    assert [r['world_size'] for r in ranks] == [2, 2]
    assert {r['wrapped'] for r in ranks} == {'ReIDDistributedDataParallel'}
    assert ranks[0]['weights'] == ranks[1]['weights']  # DDP kept the replicas identical
    for epoch in (0, 1):
        seen = []
        for r in ranks:
            batches = [b for b in r['batches'] if b['epoch'] == epoch]
            assert len(batches) == 1  # 2 P x K batches per epoch, one per rank
            counts = Counter(batches[0]['pid'])
            assert len(counts) == 4 and set(counts.values()) == {4}  # P = 4 ids x K = 4
            seen.append(set(counts))
        assert not seen[0] & seen[1] and len(seen[0] | seen[1]) == 8  # ids split across ranks

    distributed = json.loads((work / 'test_metrics.json').read_text())
    with open(dump, 'rb') as f:
        records = pickle.load(f)  # written by this test's own run
    test_set = SyntheticReID(
        split='test', num_train_ids=8, num_test_ids=5, images_per_id=3, img_size=(64, 32)
    )
    assert len(records) >= len(test_set) and {r['sample_idx'] for r in records} == set(range(15))
    unique = {}
    for record in records:
        unique.setdefault(record['sample_idx'], record)
    single = ReIDMetric()
    single.dataset_meta = test_set.metainfo
    for record in reversed(list(unique.values())):  # another order than the ranks'
        single.process({}, [record])
    metrics = single.evaluate(len(unique))
    assert metrics == pytest.approx(distributed, rel=0, abs=0)
    assert Path(work / 'last_checkpoint').is_file()
