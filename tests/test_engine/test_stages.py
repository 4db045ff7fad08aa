"""Training stages in one run (CLIP-ReID): each stage trains only its parameters with its own
optimiser and schedule, stage 2's text features are computed once, and a run killed in either
stage (or just before the boundary) and resumed ends bit-identical to an uninterrupted run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import torch
from engine_helpers import ROOT, make_runner, scalars, subprocess_env
from mmengine.hooks import Hook
from stages_helpers import write_clip_reid_config

from promptsg.engine.checkpoint import load_checkpoint_file
from promptsg.errors import ConfigError

#: 8 ids x 4 images, batch 16: 2 iterations per epoch; stage 1 = epochs 1-2, stage 2 = 3-4.
EPOCHS, ITERS_PER_EPOCH, NUM_IDS = 4, 2, 8

KILL_PLUGIN = """
import os
import signal

from mmengine.hooks import Hook

from promptsg.registry import HOOKS


@HOOKS.register_module()
class KillAfterIter(Hook):
    def __init__(self, at_iter):
        self.at_iter = at_iter

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at_iter:
            os.kill(os.getpid(), signal.SIGKILL)
"""


class StageProbe(Hook):
    """Snapshots of the model's parts at every epoch end, and the text encoder's workload."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.states: list[dict] = []
        self.text_rows: list[int] = []  # prompts encoded during each epoch (boundary included)
        self._rows = 0

    def before_train(self, runner) -> None:
        encoder = runner.model.backbone.text_encoder
        original = encoder.encode_embeddings

        def counted(embeds, eot):
            self._rows += len(embeds)
            return original(embeds, eot)

        encoder.encode_embeddings = counted
        self.states.append(self._snapshot(runner))

    def after_train_epoch(self, runner) -> None:
        self.states.append(self._snapshot(runner))
        self.text_rows.append(self._rows)
        self._rows = 0

    @staticmethod
    def _snapshot(runner) -> dict:
        return {k: v.detach().clone() for k, v in runner.model.state_dict().items()}


def _changed(a: dict, b: dict, prefix: str) -> list[str]:
    return [k for k in a if k.startswith(prefix) and not torch.equal(a[k], b[k])]


def test_two_stages_in_one_run(tmp_path):
    config = write_clip_reid_config(tmp_path, num_train_ids=NUM_IDS)
    runner = make_runner(config, tmp_path / 'work')
    probe = StageProbe()
    runner.register_hook(probe)
    runner.train()
    s = probe.states  # s[e] = after e epochs
    for epoch in (1, 2):  # stage 1: only the prompts move; encoders bit-identical
        assert _changed(s[epoch - 1], s[epoch], 'prompt_learner.') != []
        moved = [k for k in _changed(s[epoch - 1], s[epoch], '') if 'prompt_learner' not in k]
        assert moved == []
    for epoch in (3, 4):  # stage 2: the prompts never move; the image encoder does
        assert _changed(s[epoch - 1], s[epoch], 'prompt_learner.') == []
        assert _changed(s[epoch - 1], s[epoch], 'backbone.visual.') != []
        assert _changed(s[epoch - 1], s[epoch], 'backbone.text_encoder.') == []
    # stage 1 encodes each step's prompts (16 per step); stage 2 every identity once, at the
    # boundary, and nothing per step
    assert probe.text_rows == [16 * ITERS_PER_EPOCH] * 2 + [NUM_IDS, 0]
    records = scalars(tmp_path / 'work')
    assert [r['step'] for r in records if 'reid/mAP' in r] == [3, 4]  # validation in stage 2
    lrs = [r['lr_modules'] for r in records if 'loss' in r]  # the active stage's optimiser
    assert lrs == pytest.approx([1e-3, 1e-3, 1e-2, 1e-2, 1e-3, 1e-3, 1e-4, 1e-4])
    assert 'loss_i2t_t2i' in records[0] and 'loss_i2t_ce' in records[-1 - 2]


def test_stage_epochs_must_add_up(tmp_path):
    config = write_clip_reid_config(tmp_path, num_train_ids=NUM_IDS)
    runner = make_runner(config, tmp_path / 'work', **{'train_cfg.max_epochs': 5})
    with pytest.raises(ConfigError, match='add up to 4 epochs'):
        runner.train()


def test_stage_names_must_match_the_optimisers(tmp_path):
    extra = (
        "custom_hooks = [dict(type='TrainingStagesHook', stages=["
        "dict(name='image', epochs=2), dict(name='prompt', epochs=2)])]\n"
    )
    config = write_clip_reid_config(tmp_path, extra, num_train_ids=NUM_IDS)
    with pytest.raises(ConfigError, match="in order: \\['image', 'prompt'\\]"):
        make_runner(config, tmp_path / 'work').train()


def _train(config, work_dir, *args, env) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / 'tools' / 'train.py'), str(config)]
    cmd += ['--work-dir', str(work_dir), *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope='module')
def whole_run(tmp_path_factory):
    """An uninterrupted two-stage run through tools/train.py."""
    folder = tmp_path_factory.mktemp('stages')
    config = write_clip_reid_config(folder, num_train_ids=NUM_IDS)
    (folder / 'kill_after_iter.py').write_text(KILL_PLUGIN)
    env = subprocess_env(PYTHONPATH=f'{ROOT}:{folder}')
    whole = _train(config, folder / 'whole', env=env)
    assert whole.returncode == 0, whole.stderr[-3000:]
    return folder, config, env


@pytest.mark.slow
@pytest.mark.parametrize(
    'kill_at,resumed_epochs',
    [(3, {2, 3, 4}), (6, {3, 4}), (7, {4})],
    ids=['in-stage-1', 'before-boundary', 'in-stage-2'],
)
def test_killed_and_resumed_equals_uninterrupted(whole_run, kill_at, resumed_epochs):
    folder, config, env = whole_run
    killed = folder / f'killed_{kill_at}.py'
    killed.write_text(
        f"_base_ = ['./{config.name}']\n"
        "custom_imports = dict(imports=['kill_after_iter'], allow_failed_imports=False)\n"
        f"custom_hooks = [dict(type='TrainingStagesHook', stages=["
        "dict(name='prompt', epochs=2, cache_features=True), dict(name='image', epochs=2)]),"
        f" dict(type='KillAfterIter', at_iter={kill_at})]\n"
    )
    work = folder / f'interrupted_{kill_at}'
    crash = _train(killed, work, env=env)
    assert crash.returncode == -signal.SIGKILL, crash.stderr[-3000:]
    last_saved = (kill_at - 1) // ITERS_PER_EPOCH
    assert (work / f'epoch_{last_saved}.pth').is_file()
    assert not (work / f'epoch_{last_saved + 1}.pth').exists()

    resumed = _train(config, work, '--resume', env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    runs = sorted(work.glob('*/vis_data/scalars.json'))
    epochs = {json.loads(line).get('epoch') for line in runs[-1].read_text().splitlines()}
    assert epochs - {None} == resumed_epochs
    whole = folder / 'whole'
    for epoch in range(last_saved + 1, EPOCHS + 1):
        a = load_checkpoint_file(str(whole / f'epoch_{epoch}.pth'))
        b = load_checkpoint_file(str(work / f'epoch_{epoch}.pth'))
        assert [
            k for k in a['state_dict'] if not torch.equal(a['state_dict'][k], b['state_dict'][k])
        ] == []
    assert json.loads((work / 'test_metrics.json').read_text()) == json.loads(
        (whole / 'test_metrics.json').read_text()
    )


def _constructor(**cfg):
    from promptsg.registry import OPTIM_WRAPPER_CONSTRUCTORS

    return OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(type='StageOptimWrapperConstructor', optim_wrapper_cfg=cfg)
    )


def test_stage_optimisers_hold_their_parameters_and_share_top_level_options():
    from mmengine.registry import DefaultScope

    from promptsg.registry import MODELS

    with DefaultScope.overwrite_default_scope('promptsg'):
        model = MODELS.build(
            dict(
                type='CLIPReID',
                num_classes=4,
                backbone=dict(type='CLIPViT', arch='tiny-vit', img_size=(64, 32), pretrained=None),
                head=dict(type='LinearClassifier'),
                losses=dict(ce=dict(type='CrossEntropyLoss')),
            )
        )
    wrapper = _constructor(
        prompt=dict(optimizer=dict(type='Adam', lr=1e-2), params=['prompt_learner.']),
        image=dict(
            optimizer=dict(type='Adam', lr=1e-3),
            exclude=['prompt_learner.'],
            paramwise_cfg=dict(lr_clip_visual=1e-4),
        ),
        dtype='bfloat16',  # what tools/train.py --amp adds at the top level
    )(model)
    assert list(wrapper.keys()) == ['prompt', 'image']
    names = {id(p): n for n, p in model.named_parameters()}
    held = {
        stage: {names[id(p)] for g in w.optimizer.param_groups for p in g['params']}
        for stage, w in wrapper.items()
    }
    assert held['prompt'] == {'prompt_learner.identity_ctx'}
    assert not any(
        n.startswith(('prompt_learner.', 'backbone.text_encoder.')) for n in held['image']
    )
    assert any(n.startswith('backbone.visual.') for n in held['image'])
    assert {g['lr'] for g in wrapper['image'].optimizer.param_groups} == {1e-4, 1e-3}
    assert all(w.cast_dtype == torch.bfloat16 for w in wrapper.values())
    wrapper.activate('image')
    assert wrapper.optimizer is wrapper['image'].optimizer  # what lr logging reads
    with pytest.raises(ConfigError, match="no optimiser for stage 'text'"):
        wrapper.activate('text')


def test_stage_optimiser_config_errors():
    from mmengine.registry import DefaultScope

    from promptsg.registry import MODELS

    with pytest.raises(ConfigError, match='one dict with an optimizer per stage'):
        _constructor(dtype='bfloat16')
    with pytest.raises(ConfigError, match='params must be a list'):
        _constructor(prompt=dict(optimizer=dict(type='Adam', lr=1e-2), params=[3]))
    with DefaultScope.overwrite_default_scope('promptsg'):
        model = MODELS.build(
            dict(
                type='ReIDBaseline',
                num_classes=4,
                backbone=dict(type='CLIPViT', arch='tiny-vit', img_size=(64, 32), pretrained=None),
                losses=dict(t=dict(type='TripletLoss')),
            )
        )
    build = _constructor(prompt=dict(optimizer=dict(type='Adam', lr=1e-2), params=['prompt_l']))
    with pytest.raises(ConfigError, match='optim_wrapper.prompt: the stage has no parameters'):
        build(model)
