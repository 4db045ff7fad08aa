"""A tiny two-stage CLIP-ReID config (2 prompt epochs, then 2 image epochs) on the tiny run."""

from __future__ import annotations

from pathlib import Path

from engine_helpers import write_config

#: Appended to the tiny config: CLIP-ReID, one optimiser and schedule per stage, the stages hook.
CLIP_REID_EXTRA = """
model = dict(
    type='CLIPReID',
    num_classes={num_train_ids},
    backbone=dict(type='CLIPViT', arch='tiny-vit', img_size=img_size, pretrained=None),
    prompt_learner=dict(type='IdentityPromptLearner', num_tokens=4),
    neck=dict(type='BNNeck'),
    head=dict(type='LinearClassifier'),
    feat_dropout=0.1,
    losses=dict(
        ce=dict(type='CrossEntropyLoss', label_smoothing=0.1, loss_weight=0.25),
        triplet=dict(type='TripletLoss', margin=0.3),
        i2t_ce=dict(type='ImageToTextCELoss', label_smoothing=0.1),
    ),
)
optim_wrapper = dict(
    constructor='StageOptimWrapperConstructor',
    prompt=dict(
        optimizer=dict(type='Adam', lr=1e-2, weight_decay=1e-4), params=['prompt_learner.']
    ),
    image=dict(
        optimizer=dict(type='Adam', lr=1e-3, weight_decay=1e-4),
        exclude=['prompt_learner.'],
        clip_grad=dict(max_norm=5.0),
    ),
)
param_scheduler = dict(
    prompt=[dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=2)],
    image=[dict(type='MultiStepLR', by_epoch=True, milestones=[1], gamma=0.1, begin=2, end=4)],
)
train_cfg = dict(by_epoch=True, max_epochs=4, val_begin=3, val_interval=1)
custom_hooks = [
    dict(
        type='TrainingStagesHook',
        stages=[dict(name='prompt', epochs=2, cache_features=True), dict(name='image', epochs=2)],
    ),
]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(max_keep_ckpts=-1))
"""


def write_clip_reid_config(folder: Path, extra: str = '', num_train_ids: int = 8) -> Path:
    """The tiny engine config turned into a two-stage CLIP-ReID run; returns its path."""
    return write_config(
        folder,
        CLIP_REID_EXTRA.format(num_train_ids=num_train_ids) + extra,
        name='tiny_clip_reid.py',
        num_train_ids=num_train_ids,
    )
