# CLIP-ReID's two stages in one run (official configs/person/vit_clipreid.yml), with the runtime.
# Stage 'prompt' (epochs 1-120): Adam lr 3.5e-4, wd 1e-4, only the prompt learner; linear warm-up
# from 1e-5 over 5 epochs, then cosine to 1e-6 (timm's CosineLRScheduler in the official code;
# mmengine's LinearLR + CosineAnnealingLR here). Frozen image features are extracted once, with
# the test pipeline, when the stage begins.
# Stage 'image' (epochs 121-180): Adam lr 5e-6 (biases 1e-5), wd 1e-4, everything but the
# prompts; warm-up x0.1 over 10 epochs, x0.1 at its epochs 30 and 50. Validation in stage 2 only.
_base_ = ['../default_runtime.py']

prompt_epochs, image_epochs = 120, 60
optim_wrapper = dict(
    constructor='StageOptimWrapperConstructor',
    prompt=dict(
        optimizer=dict(type='Adam', lr=3.5e-4, weight_decay=1e-4), params=['prompt_learner.']
    ),
    image=dict(
        optimizer=dict(type='Adam', lr=5e-6, weight_decay=1e-4),
        exclude=['prompt_learner.'],
        paramwise_cfg=dict(bias_lr_mult=2.0),  # BIAS_LR_FACTOR 2 of the official stage 2
    ),
)
param_scheduler = dict(
    prompt=[
        dict(type='LinearLR', start_factor=1e-5 / 3.5e-4, by_epoch=True, begin=0, end=5),
        dict(type='CosineAnnealingLR', by_epoch=True, begin=5, end=prompt_epochs, eta_min=1e-6),
    ],
    image=[
        dict(
            type='LinearLR',
            start_factor=0.1,
            by_epoch=True,
            begin=prompt_epochs,
            end=prompt_epochs + 10,
        ),
        dict(
            type='MultiStepLR',
            by_epoch=True,
            milestones=[30, 50],
            gamma=0.1,
            begin=prompt_epochs,
            end=prompt_epochs + image_epochs,
        ),
    ],
)
train_cfg = dict(
    by_epoch=True,
    max_epochs=prompt_epochs + image_epochs,
    val_begin=prompt_epochs + 1,
    val_interval=1,
)
val_cfg = dict()
test_cfg = dict()
custom_hooks = [
    dict(
        type='TrainingStagesHook',
        stages=[
            dict(name='prompt', epochs=prompt_epochs, cache_features=True),
            dict(name='image', epochs=image_epochs),
        ],
    ),
    dict(type='ReIDTrainingHook'),
    dict(type='PortableCheckpointHook'),
    dict(type='RandomStateHook'),
    dict(type='SyncBuffersHook'),
    dict(type='FeatureProgressHook'),
]
# Early stopping waits a whole learning-rate phase of stage 2 (20 epochs).
default_hooks = dict(early_stopping=dict(patience=20, min_delta=0.1))
