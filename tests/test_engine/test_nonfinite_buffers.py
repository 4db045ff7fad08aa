"""A skipped non-finite update leaves every buffer (BatchNorm running statistics) as it was,
and NaN features at evaluation name the run's skipped updates."""

from __future__ import annotations

import pytest
import torch
from engine_helpers import make_runner
from mmengine.hooks import Hook
from mmengine.logging import MessageHub

from promptsg.engine.checkpoint import load_checkpoint_file
from promptsg.errors import DataError
from promptsg.evaluation.reid_metric import ReIDMetric


class NaNBackboneAt(Hook):
    """Make the backbone's output NaN in one training iteration and snapshot the buffers
    around it (a forward pass that BatchNorm layers downstream take in)."""

    def __init__(self, at_iter: int) -> None:
        self.at_iter, self.before, self.after = at_iter, None, None

    def before_train(self, runner) -> None:
        def poison(module, args, output):
            if module.training and runner.iter == self.at_iter:
                return (
                    torch.full_like(output, float('nan'))
                    if torch.is_tensor(output)
                    else tuple(torch.full_like(o, float('nan')) for o in output)
                )
            return None

        runner.model.backbone.register_forward_hook(poison)

    def _buffers(self, runner):
        return {n: b.detach().clone() for n, b in runner.model.named_buffers()}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.at_iter:
            self.before = self._buffers(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter == self.at_iter:
            self.after = self._buffers(runner)


def test_a_skipped_update_leaves_the_batchnorm_statistics_as_they_were(tiny_config, tmp_path):
    work = tmp_path / 'work'
    runner = make_runner(tiny_config(), work, **{'optim_wrapper.nonfinite': 'skip'})
    watch = NaNBackboneAt(1)
    runner.register_hook(watch)
    runner.train()
    assert runner.optim_wrapper.nonfinite_skips == 1
    stats = [n for n in watch.before if 'running_var' in n]
    assert stats  # the model has BatchNorm layers
    changed = [n for n in watch.before if not torch.equal(watch.before[n], watch.after[n])]
    assert changed == []
    final = load_checkpoint_file(str(work / 'epoch_2.pth'))['state_dict']
    assert all(torch.isfinite(v).all() for v in final.values() if v.is_floating_point())


def _nan_samples():
    feats = [torch.randn(4) for _ in range(4)]
    feats[1] = torch.full((4,), float('nan'))
    return [
        dict(feat=f, pid=i % 2, camid=i, sample_idx=i, is_query=i < 2) for i, f in enumerate(feats)
    ]


def test_nan_features_at_evaluation_name_the_skip_count():
    hub = MessageHub.get_instance('nonfinite_metric_test')
    metric = ReIDMetric()
    hub.update_scalar('train/nonfinite_skips', 3)
    with pytest.raises(
        DataError,
        match='1 of 4 evaluation features are NaN or inf; this run skipped 3 non-finite updates',
    ):
        metric.compute_metrics(_nan_samples())
    MessageHub.get_instance('nonfinite_metric_test_clean')
    with pytest.raises(DataError, match=r'features are NaN or inf \(check'):
        metric.compute_metrics(_nan_samples())
