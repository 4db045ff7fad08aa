"""Helpers of the engine tests: a tiny PromptSG config, subprocess environment, log reading."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MessageHub
from torch import nn

from promptsg.registry import LOSSES, METRICS

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / 'configs' / '_base_' / 'default_runtime.py'

#: 8 training ids x 4 images = 2 P x K batches of 16 per epoch; 8 val queries; 4 test ids.
TINY_CONFIG = """
_base_ = [{bases}]
img_size = (64, 32)
synthetic = dict(
    type='SyntheticReID', num_train_ids={num_train_ids}, num_test_ids=4, images_per_id=4,
    img_size=img_size, seed=0,
)
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='RandomHorizontalFlip', prob=0.5),
    dict(type='Pad', padding=4),
    dict(type='RandomCrop', size=img_size),
    dict(type='PackReIDInputs'),
]
test_pipeline = [
    dict(type='LoadImage'), dict(type='Resize', size=img_size), dict(type='PackReIDInputs')
]
train_dataloader = dict(
    batch_size=16, num_workers=0,
    sampler=dict(type='PKSampler', num_instances=4),
    collate_fn=dict(type='default_collate'),
    dataset=dict(**synthetic, split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=32, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(**synthetic, split='val', pipeline=test_pipeline),
)
test_dataloader = dict(
    batch_size=8, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(**synthetic, split='test', pipeline=test_pipeline),
)
val_evaluator = dict(type='ReIDMetric')
test_evaluator = dict(type='ReIDMetric')
model = dict(
    type='PromptSG',
    num_classes={num_train_ids},
    backbone=dict(type='{backbone}', arch='{arch}', img_size=img_size, pretrained=None),
    inversion=dict(type='InversionNetwork', variant='paper', hidden_dim=32),
    prompt=dict(type='PromptComposer', template='A photo of a {{}} person.'),
    fixed_prompt=dict(type='FixedPrompt', template='A photo of a person.'),
    interaction=dict(
        type='MultimodalInteraction', num_heads=4, num_cross_layers=1, num_self_layers=1
    ),
    neck=dict(type='BNNeck'),
    head=dict(type='LinearClassifier'),
    feat_dropout=0.1,
    losses=dict(
        ce=dict(type='CrossEntropyLoss', label_smoothing=0.1),
        triplet=dict(type='TripletLoss', margin=0.3),
        supcon=dict(type='SupConLoss', temperature=0.07, loss_weight=0.5),
    ),
    test_cfg=dict(prompt='composed'),
)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(max_keep_ckpts=1))
log_level = 'WARNING'
experiment_name = {experiment!r}
"""

#: The tiny run's own schedule, used unless a schedule base file is named.
TINY_SCHEDULE = """
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    paramwise_cfg=dict(lr_clip_visual=1e-3, lr_modules=2e-3),
    clip_grad=dict(max_norm=5.0),
)
param_scheduler = []
train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=1)
"""


def write_config(
    folder: Path,
    extra: str = '',
    name: str = 'tiny.py',
    arch: str = 'tiny-vit',
    num_train_ids: int = 8,
    schedule: str | None = None,
) -> Path:
    """Write the tiny config (plus ``extra`` config lines) into ``folder``; return its path.

    ``schedule`` names a file of ``configs/_base_/schedules/`` to inherit instead of the tiny
    run's own optimiser and schedule.
    """
    backbone = 'CLIPResNet' if 'rn' in arch else 'CLIPViT'
    bases = [str(RUNTIME)]
    if schedule is not None:
        bases.append(str(ROOT / 'configs' / '_base_' / 'schedules' / schedule))
    text = TINY_CONFIG.format(
        bases=', '.join(repr(b) for b in bases),
        backbone=backbone,
        arch=arch,
        num_train_ids=num_train_ids,
        experiment=f'tiny_{uuid.uuid4().hex[:8]}',
    )
    path = folder / name
    path.write_text(text + (TINY_SCHEDULE if schedule is None else '') + extra)
    return path


def subprocess_env(**extra: str) -> dict:
    """Environment for tool subprocesses: one thread, repo on the path, no torch.load switches."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('TORCH_FORCE')}
    env.update(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONHASHSEED='0')
    env['PYTHONPATH'] = os.pathsep.join(p for p in (str(ROOT), env.get('PYTHONPATH')) if p)
    env.update(extra)
    return env


def free_port() -> int:
    """A TCP port free right now, for a torchrun rendezvous."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def dist_train(config, work_dir, *args: str, env: dict):
    """``tools/dist_train.sh CONFIG 2 --work-dir WORK_DIR ARGS`` on a fresh port (gloo, CPU)."""
    cmd = ['bash', str(ROOT / 'tools' / 'dist_train.sh'), str(config), '2']
    cmd += ['--work-dir', str(work_dir), *args]
    env = dict(env, PORT=str(free_port()), PYTHON=sys.executable)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)


def scalars(work_dir: Path) -> list[dict]:
    """The records of ``<work_dir>/<timestamp>/vis_data/scalars.json`` (all runs, in order)."""
    records = []
    for path in sorted(Path(work_dir).glob('*/vis_data/scalars.json')):
        records += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return records


def make_runner(config: Path, work_dir: Path, resume: str | None = None, edit=None, **options):
    """Load ``config`` with ``--cfg-options``-style ``options``, apply ``edit(cfg)`` if given,
    and build its Runner in-process."""
    from promptsg.engine.config import load_config
    from promptsg.engine.runner import build_runner

    cfg = load_config(str(config), options or None)
    if edit is not None:
        edit(cfg)
    cfg.experiment_name = unique_name()  # mmengine shares hubs between runs of the same name
    return build_runner(cfg, str(work_dir), resume=resume)


def unique_name() -> str:
    """A fresh experiment name (mmengine keys its message hub and logger by name + second)."""
    return f'engine_test_{uuid.uuid4().hex[:12]}'


def load_tool(name: str):
    """``tools/<name>.py`` as a module (its ``main(argv)`` runs the tool in-process)."""
    spec = importlib.util.spec_from_file_location(
        f'promptsg_tool_{name}', ROOT / 'tools' / f'{name}.py'
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@METRICS.register_module(force=True)
class ScriptedScoreMetric(BaseMetric):
    """Validation scores read from a script by epoch: ``scores[i]`` after training epoch i + 1.

    Lets a test decide which epoch is best and when early stopping must trigger; the model,
    data, loops and hooks all run for real.
    """

    default_prefix = 'reid'

    def __init__(self, scores: list[float], prefix: str | None = 'reid', **kwargs) -> None:
        super().__init__(prefix=prefix, **kwargs)
        self.scores = list(scores)

    def process(self, data_batch, data_samples) -> None:
        self.results.append(len(data_samples))

    def compute_metrics(self, results: list) -> dict[str, float]:
        epoch = MessageHub.get_current_instance().get_info('epoch')
        score = float(self.scores[epoch])
        return {'mAP': score, 'rank1': score}


@LOSSES.register_module(force=True)
class NaNProbeLoss(nn.Module):
    """A zero loss term ``loss_probe`` that turns NaN at the chosen training calls (0-based)."""

    def __init__(self, nan_at: list[int]) -> None:
        super().__init__()
        self.nan_at = set(nan_at)
        self.calls = 0

    def forward(self, feat: torch.Tensor, pid: torch.Tensor) -> dict[str, torch.Tensor]:
        value = feat.sum() * (float('nan') if self.calls in self.nan_at else 0.0)
        self.calls += 1
        return {'loss_probe': value}
